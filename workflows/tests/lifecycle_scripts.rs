//! The store lifecycle scripts run with `sh`, PATH-prefixed with stateful fakes: backup
//! (`scripts/store-backup.sh`) and restore (`scripts/store-restore.sh`) against
//! `fake-mariadb-dump.sh` / `fake-mariadb.sh` (a database kept as one file per table) and a
//! real uploads directory, in PVC mode and against a real S3-compatible server (moto's
//! `moto_server`, installed by `make test`); the upgrade (`scripts/store-upgrade.sh`) against
//! `fake-wp.sh`. Each script is run twice: the second run changes nothing.
//!
//! The phases that run in the `curlimages/curl` image (backup `upload`, restore `fetch`) run
//! as they would there: under busybox `sh` with only busybox applets and `curl` on the PATH
//! (busybox is installed by `make test`).

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts");
const FAKES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests");
const DB_PASSWORD: &str = "s3cret pass'word";
/// What the curl image's scripts use besides curl: busybox applets.
const APPLETS: &[&str] = &[
    "sh",
    "sha256sum",
    "awk",
    "tr",
    "cut",
    "wc",
    "sed",
    "mkdir",
    "rm",
    "mv",
    "cat",
    "date",
];

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var("PATH")
        .ok()?
        .split(':')
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
}

/// A scratch directory per test (process id + test name) with the fakes on a `bin/` PATH, a
/// fake database, an uploads directory and a backup directory. Removed unless the test failed.
struct Fixture {
    root: PathBuf,
}

impl Fixture {
    fn new(test: &str) -> Self {
        let root =
            std::env::temp_dir().join(format!("urumi-lifecycle-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for d in [
            "bin",
            "db",
            "uploads/2026/01",
            "backups",
            "wp-state",
            "html",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        for (fake, name) in [
            ("fake-mariadb-dump.sh", "mariadb-dump"),
            ("fake-mariadb.sh", "mariadb"),
            ("fake-wp.sh", "wp"),
        ] {
            let to = root.join("bin").join(name);
            std::fs::copy(Path::new(FAKES).join(fake), &to).unwrap();
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        // The curl image: busybox applets and curl, nothing else.
        let image = root.join("curl-image");
        std::fs::create_dir_all(&image).unwrap();
        let busybox = which("busybox").unwrap_or_else(|| {
            panic!("busybox is required (apt-get install busybox; make test installs it)")
        });
        for applet in APPLETS {
            std::os::unix::fs::symlink(&busybox, image.join(applet)).unwrap();
        }
        std::os::unix::fs::symlink(which("curl").expect("curl is required"), image.join("curl"))
            .unwrap();
        let f = Self { root };
        f.write(
            "db/wp_options",
            "1,'siteurl','http://shop.example'\n2,'blogname','Shop'\n",
        );
        f.write(
            "db/wp_posts",
            "10,'Hello world','publish'\n11,'Cap','publish'\n",
        );
        f.write("db/wp_users", "1,'urumi-admin'\n");
        f.write("uploads/2026/01/cap.jpg", "JPEG cap bytes");
        f.write("uploads/2026/01/mug.png", "PNG mug bytes");
        f.write("uploads/notes.txt", "top-level upload\n");
        f
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn write(&self, rel: &str, content: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    /// A script run with a clean environment: PATH (fakes first), TMPDIR, the fake database's
    /// location and password, the database env, UPLOADS_DIR, and `env`. The curl image's
    /// phases (`upload`, `fetch`) run under busybox `sh` with the curl image's PATH.
    fn run(&self, script: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        let curl_image = matches!(args, ["upload" | "fetch"]);
        let (sh, path) = if curl_image {
            (
                self.path("curl-image/sh"),
                self.path("curl-image").display().to_string(),
            )
        } else {
            (
                PathBuf::from("sh"),
                format!(
                    "{}:{}",
                    self.path("bin").display(),
                    std::env::var("PATH").unwrap()
                ),
            )
        };
        let mut cmd = Command::new(sh);
        cmd.arg(Path::new(SCRIPTS).join(script))
            .args(args)
            .env_clear()
            .env("PATH", path)
            .env("TMPDIR", std::env::temp_dir())
            .env("FAKE_DB_STATE", self.path("db"))
            .env("FAKE_DB_LOG", self.path("db.log"))
            .env("FAKE_DB_PASSWORD", DB_PASSWORD)
            .env("FAKE_WP_STATE", self.path("wp-state"))
            .env("DB_HOST", "mariadb.store-1.svc")
            .env("DB_NAME", "wordpress")
            .env("DB_USER", "wordpress")
            .env("DB_PASSWORD", DB_PASSWORD)
            .env("UPLOADS_DIR", self.path("uploads"))
            .env("BACKUP_DIR", self.path("backups"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    /// Like [`Fixture::run`], and the run must succeed.
    fn ok(&self, script: &str, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.run(script, args, env);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{script} {args:?} failed: {}\nstdout: {stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Like [`Fixture::run`], and the run must fail; its stderr.
    fn fails(&self, script: &str, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.run(script, args, env);
        assert!(
            !out.status.success(),
            "{script} {args:?} succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Every file under `rel`, by relative path, with its bytes.
    fn snapshot(&self, rel: &str) -> BTreeMap<String, Vec<u8>> {
        fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(base, &p, out);
                } else {
                    let key = p.strip_prefix(base).unwrap().display().to_string();
                    out.insert(key, std::fs::read(&p).unwrap());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.path(rel), &self.path(rel), &mut out);
        out
    }

    /// The fake database's log: one line per mariadb-dump / mariadb run.
    fn db_log(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("db.log"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    fn backup(&self, id: &str, env: &[(&str, &str)]) -> Value {
        let mut all = vec![("BACKUP_ID", id)];
        all.extend_from_slice(env);
        last_line(&self.ok("store-backup.sh", &["dump"], &all), "URUMI-BACKUP")
    }

    /// Changes the database and the uploads after a backup.
    fn change_the_store(&self) {
        self.write(
            "db/wp_posts",
            "10,'Hello world','trash'\n12,'New','draft'\n",
        );
        std::fs::remove_file(self.path("db/wp_users")).unwrap();
        self.write("db/wp_new_plugin_table", "1,'made after the backup'\n");
        std::fs::remove_file(self.path("uploads/2026/01/cap.jpg")).unwrap();
        self.write("uploads/2026/01/mug.png", "PNG mug bytes, edited");
        self.write("uploads/2027/new.jpg", "made after the backup");
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// The JSON of the output's last line, which must start with `prefix`.
fn last_line(stdout: &str, prefix: &str) -> Value {
    let last = stdout.lines().last().unwrap_or_default();
    let json = last
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix(' '))
        .unwrap_or_else(|| panic!("the last line is not {prefix}: {stdout}"));
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{last}: {e}"))
}

fn sha256(p: &Path) -> String {
    let out = Command::new("sha256sum").arg(p).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

fn tar_listing(p: &Path) -> Vec<String> {
    let out = Command::new("tar").arg("-tf").arg(p).output().unwrap();
    assert!(out.status.success());
    let mut names: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    names.sort();
    names
}

/// The archive's size and checksum as the backup line must report them.
fn on_disk(archive: &Path) -> (u64, String) {
    (std::fs::metadata(archive).unwrap().len(), sha256(archive))
}

fn reported(line: &Value) -> (u64, String) {
    (
        line["size"].as_u64().expect("size"),
        line["sha256"].as_str().expect("sha256").to_string(),
    )
}

#[test]
fn a_pvc_backup_made_twice_is_one_archive_and_prune_removes_exactly_the_named_ones() {
    let f = Fixture::new("pvc-backup");
    let id = "0190a1b2-0000-7000-8000-000000000001";
    let archive = f.path(&format!("backups/{id}.tar"));

    let first = f.backup(id, &[]);
    assert_eq!(first["id"], id);
    assert_eq!(
        reported(&first),
        on_disk(&archive),
        "the line matches the file"
    );
    assert_eq!(f.db_log(), ["mariadb-dump wordpress"]);
    assert_eq!(
        tar_listing(&archive),
        ["db.sql.gz", "manifest.json", "uploads.tar.gz"]
    );
    // The uploads, without an entry for the directory itself.
    let inner = Command::new("sh")
        .args(["-c", "tar -xOf \"$1\" uploads.tar.gz | tar -tzf -", "sh"])
        .arg(&archive)
        .output()
        .unwrap();
    assert!(inner.status.success());
    let mut uploads: Vec<String> = String::from_utf8(inner.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    uploads.sort();
    assert_eq!(
        uploads,
        [
            "./2026/",
            "./2026/01/",
            "./2026/01/cap.jpg",
            "./2026/01/mug.png",
            "./notes.txt"
        ]
    );
    let sums = std::fs::read_to_string(f.path(&format!("backups/{id}.sha256"))).unwrap();
    assert_eq!(sums, format!("{}  {id}.tar\n", on_disk(&archive).1));
    let bytes = std::fs::read(&archive).unwrap();

    let second = f.backup(id, &[]);
    assert_eq!(second, first, "the same archive, the same line");
    assert_eq!(f.db_log(), ["mariadb-dump wordpress"], "no second dump");
    assert_eq!(std::fs::read(&archive).unwrap(), bytes);

    // A damaged archive is made again.
    std::fs::write(&archive, b"truncated").unwrap();
    let third = f.backup(id, &[]);
    assert_eq!(reported(&third), on_disk(&archive));
    assert_eq!(f.db_log().len(), 2, "the damaged archive was dumped again");

    // Older backups, one pruned by the next backup; unrelated files and unknown ids are fine.
    let (old1, old2) = (
        "0190a1b2-0000-7000-8000-00000000000a",
        "0190a1b2-0000-7000-8000-00000000000b",
    );
    f.backup(old1, &[]);
    f.backup(old2, &[]);
    f.write("backups/keep-me.txt", "not a backup");
    let new = "0190a1b2-0000-7000-8000-000000000002";
    let prune = format!("{old1} 0190a1b2-0000-7000-8000-0000000000ff {new}");
    f.backup(new, &[("PRUNE", prune.as_str())]);
    let mut left: Vec<String> = std::fs::read_dir(f.path("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    let mut want = vec![
        format!("{id}.sha256"),
        format!("{id}.tar"),
        format!("{old2}.sha256"),
        format!("{old2}.tar"),
        format!("{new}.sha256"),
        format!("{new}.tar"),
        "keep-me.txt".to_string(),
    ];
    want.sort();
    assert_eq!(
        left, want,
        "exactly {old1} was pruned; the new backup is kept"
    );

    // Without an uploads directory the archive holds the database only.
    std::fs::remove_dir_all(f.path("uploads")).unwrap();
    let db_only = "0190a1b2-0000-7000-8000-000000000003";
    f.backup(db_only, &[]);
    assert_eq!(
        tar_listing(&f.path(&format!("backups/{db_only}.tar"))),
        ["db.sql.gz", "manifest.json"]
    );
}

#[test]
fn a_failed_dump_leaves_no_archive() {
    let f = Fixture::new("failed-dump");
    let id = "0190a1b2-0000-7000-8000-000000000001";
    let err = f.fails(
        "store-backup.sh",
        &["dump"],
        &[("BACKUP_ID", id), ("DB_PASSWORD", "wrong")],
    );
    assert!(err.contains("mariadb-dump of wordpress failed"), "{err}");
    assert!(err.contains("Access denied"), "{err}");
    assert!(!f.path(&format!("backups/{id}.tar")).exists());
    assert!(!f.path(&format!("backups/{id}.sha256")).exists());
    let err = f.fails("store-backup.sh", &["dump"], &[("BACKUP_ID", "../escape")]);
    assert!(err.contains("is not an id"), "{err}");
}

#[test]
fn a_restore_puts_back_the_database_and_uploads_of_backup_time_and_refuses_a_bad_archive() {
    let f = Fixture::new("restore");
    let id = "0190a1b2-0000-7000-8000-000000000001";
    let line = f.backup(id, &[]);
    let sha = line["sha256"].as_str().unwrap().to_string();
    let (db_then, uploads_then) = (f.snapshot("db"), f.snapshot("uploads"));

    f.change_the_store();
    assert_ne!(f.snapshot("db"), db_then);
    assert_ne!(f.snapshot("uploads"), uploads_then);
    let env = [("BACKUP_ID", id), ("EXPECT_SHA256", sha.as_str())];
    for run in ["first", "second"] {
        let out = f.ok("store-restore.sh", &["import"], &env);
        let restored = last_line(&out, "URUMI-RESTORE");
        assert_eq!(restored, serde_json::json!({"id": id, "sha256": sha}));
        assert_eq!(f.snapshot("db"), db_then, "{run} restore: the database");
        assert_eq!(
            f.snapshot("uploads"),
            uploads_then,
            "{run} restore: uploads"
        );
    }

    // A wrong checksum or a missing archive is refused before anything changes.
    f.change_the_store();
    let (db_now, uploads_now, log_now) = (f.snapshot("db"), f.snapshot("uploads"), f.db_log());
    let err = f.fails(
        "store-restore.sh",
        &["import"],
        &[("BACKUP_ID", id), ("EXPECT_SHA256", &"0".repeat(64))],
    );
    assert!(
        err.contains(&format!("backup {id}: checksum mismatch")),
        "{err}"
    );
    let missing = "0190a1b2-0000-7000-8000-0000000000ff";
    let err = f.fails(
        "store-restore.sh",
        &["import"],
        &[("BACKUP_ID", missing), ("EXPECT_SHA256", sha.as_str())],
    );
    assert!(
        err.contains(&format!("backup {missing} not found")),
        "{err}"
    );
    assert_eq!(f.snapshot("db"), db_now);
    assert_eq!(f.snapshot("uploads"), uploads_now);
    assert_eq!(f.db_log(), log_now, "the database was not touched");
}

/// `moto_server` on a free port, killed (and reaped) on drop, also when the test panics.
struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `$MOTO_SERVER`, else `moto_server` from the PATH.
fn moto_tool() -> String {
    std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".into())
}

fn start_moto(tool: &str, log: &Path) -> Moto {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = std::fs::File::create(log).unwrap();
    let child = Command::new(tool)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{tool} is required (python3 -m pip install 'moto[server]'; make test installs it): {e}")
        });
    let mut moto = Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    // moto can take a while to import on a busy machine.
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = moto.child.try_wait().unwrap() {
            panic!("{tool} exited before listening: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{tool} did not listen on {port} within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    moto
}

const REGION: &str = "us-east-1";
const KEY_ID: &str = "AKIAURUMITEST";
const SECRET: &str = r#"urumi/test+"quoted"\secret"#;

/// curl with SigV4 as the scripts use it: (HTTP status, response headers).
fn s3(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--aws-sigv4"])
        .arg(format!("aws:amz:{REGION}:s3"))
        .arg("--user")
        .arg(format!("{KEY_ID}:{SECRET}"))
        .args(["-o", "/dev/null", "-D", "-", "-w", "%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (headers, code) = text.split_at(text.len() - 3);
    (code.parse().unwrap(), headers.to_ascii_lowercase())
}

fn join<'a>(a: &[(&'a str, &'a str)], b: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    a.iter().chain(b).copied().collect()
}

fn content_length(headers: &str) -> Option<u64> {
    headers
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
}

#[test]
#[should_panic(expected = "is required (python3 -m pip install 'moto[server]'")]
fn a_missing_moto_server_fails_the_s3_test_with_an_install_hint() {
    start_moto("/nonexistent/moto_server", Path::new("/dev/null"));
}

#[test]
fn an_s3_backup_uploads_once_prunes_and_restores_into_a_fresh_directory() {
    let f = Fixture::new("s3");
    let moto = start_moto(&moto_tool(), &f.path("moto.log"));
    let (code, _) = s3(&["-X", "PUT", &format!("{}/urumi-backups", moto.url)]);
    assert_eq!(code, 200, "bucket created");
    let prefix = format!("{}/urumi-backups/stores/store-1", moto.url);
    let s3_env = [
        ("S3_URL", prefix.as_str()),
        ("S3_REGION", REGION),
        ("AWS_ACCESS_KEY_ID", KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
    ];

    let old = "0190a1b2-0000-7000-8000-00000000000a";
    let old_dump = f.backup(old, &join(&s3_env, &[]));
    f.ok(
        "store-backup.sh",
        &["upload"],
        &join(&s3_env, &[("BACKUP_ID", old)]),
    );
    let (code, headers) = s3(&["-I", &format!("{prefix}/{old}.tar")]);
    assert_eq!(code, 200);
    assert_eq!(content_length(&headers), old_dump["size"].as_u64());

    // The next backup prunes the old one in the bucket; in S3 mode the dump leaves local
    // files alone.
    let id = "0190a1b2-0000-7000-8000-000000000001";
    let dumped = f.backup(id, &join(&s3_env, &[("PRUNE", old)]));
    assert!(f.path(&format!("backups/{old}.tar")).exists());
    let out = f.ok(
        "store-backup.sh",
        &["upload"],
        &join(&s3_env, &[("BACKUP_ID", id), ("PRUNE", old)]),
    );
    let uploaded = last_line(&out, "URUMI-BACKUP");
    assert_eq!(uploaded, dumped, "upload reports the same archive");
    assert_eq!(
        reported(&uploaded),
        on_disk(&f.path(&format!("backups/{id}.tar")))
    );
    let (code, headers) = s3(&["-I", &format!("{prefix}/{id}.tar")]);
    assert_eq!(code, 200);
    assert_eq!(content_length(&headers), uploaded["size"].as_u64());
    assert!(
        headers.contains(&format!(
            "x-amz-meta-sha256: {}",
            uploaded["sha256"].as_str().unwrap()
        )),
        "{headers}"
    );
    let (code, _) = s3(&["-I", &format!("{prefix}/{old}.tar")]);
    assert_eq!(code, 404, "the old backup was pruned");

    // Again: nothing is uploaded, the line is the same, pruning a missing object is fine.
    let again = f.ok(
        "store-backup.sh",
        &["upload"],
        &join(&s3_env, &[("BACKUP_ID", id), ("PRUNE", old)]),
    );
    assert!(again.contains("is already stored at"), "{again}");
    assert!(!again.contains("uploading"), "{again}");
    assert_eq!(last_line(&again, "URUMI-BACKUP"), uploaded);

    // Restore from the bucket into a fresh directory.
    let (db_then, uploads_then) = (f.snapshot("db"), f.snapshot("uploads"));
    f.change_the_store();
    let fresh = f.path("fresh");
    let fresh_dir = fresh.to_str().unwrap();
    let sha = uploaded["sha256"].as_str().unwrap();
    let restore = join(
        &s3_env,
        &[
            ("BACKUP_ID", id),
            ("BACKUP_DIR", fresh_dir),
            ("EXPECT_SHA256", sha),
        ],
    );
    let wrong = "0".repeat(64);
    let err = f.fails(
        "store-restore.sh",
        &["fetch"],
        &join(
            &s3_env,
            &[
                ("BACKUP_ID", id),
                ("BACKUP_DIR", fresh_dir),
                ("EXPECT_SHA256", wrong.as_str()),
            ],
        ),
    );
    assert!(err.contains("checksum mismatch"), "{err}");
    assert_eq!(
        std::fs::read_dir(&fresh).unwrap().count(),
        0,
        "a bad download is not kept"
    );
    let fetched = f.ok("store-restore.sh", &["fetch"], &restore);
    assert!(fetched.contains("downloading"), "{fetched}");
    assert_eq!(sha256(&fresh.join(format!("{id}.tar"))), sha);
    let fetched = f.ok("store-restore.sh", &["fetch"], &restore);
    assert!(fetched.contains("is already in"), "{fetched}");
    let out = f.ok("store-restore.sh", &["import"], &restore);
    assert_eq!(
        last_line(&out, "URUMI-RESTORE"),
        serde_json::json!({"id": id, "sha256": sha})
    );
    assert_eq!(f.snapshot("db"), db_then);
    assert_eq!(f.snapshot("uploads"), uploads_then);

    // A backup that is not in the bucket fails the fetch, naming it.
    let missing = "0190a1b2-0000-7000-8000-0000000000ff";
    let err = f.fails(
        "store-restore.sh",
        &["fetch"],
        &join(
            &s3_env,
            &[
                ("BACKUP_ID", missing),
                ("BACKUP_DIR", fresh_dir),
                ("EXPECT_SHA256", sha),
            ],
        ),
    );
    assert!(err.contains(&format!("backup {missing}")), "{err}");
    drop(moto);
}

#[test]
fn the_upgrade_installs_the_wanted_woocommerce_once_and_a_rerun_changes_nothing() {
    let f = Fixture::new("upgrade");
    // A store made by the setup script on an older image: its database is behind the files.
    for (k, v) in [
        ("installed", ""),
        ("plugin-installed", ""),
        ("plugin-active", ""),
        ("plugin-version", "9.8.5"),
        ("wc-db-version", "9.8.5"),
        ("core-version", "6.8.1"),
        ("db-version", "6.7.2"),
    ] {
        f.write(&format!("wp-state/{k}"), v);
    }
    let html = f.path("html");
    let env = [
        ("WP_PATH", html.to_str().unwrap()),
        ("WOOCOMMERCE_VERSION", "9.9.3"),
    ];
    let changes = || {
        std::fs::read_to_string(f.path("wp-state/changes"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let want = serde_json::json!({"wordpress": "6.8.1", "woocommerce": "9.9.3"});

    let out = f.ok("store-upgrade.sh", &[], &env);
    assert_eq!(last_line(&out, "URUMI-UPGRADE"), want);
    assert_eq!(
        changes(),
        [
            "plugin install woocommerce --version=9.9.3",
            "core update-db",
            "wc update"
        ]
    );
    let out = f.ok("store-upgrade.sh", &[], &env);
    assert_eq!(last_line(&out, "URUMI-UPGRADE"), want);
    assert_eq!(
        changes().len(),
        3,
        "the second run changed something: {:?}",
        changes()
    );

    // At the wanted version but deactivated: activated, nothing installed.
    std::fs::remove_file(f.path("wp-state/plugin-active")).unwrap();
    let out = f.ok("store-upgrade.sh", &[], &env);
    assert_eq!(last_line(&out, "URUMI-UPGRADE"), want);
    assert_eq!(changes()[3..], ["plugin activate woocommerce"]);

    let err = f.fails(
        "store-upgrade.sh",
        &[],
        &[("WOOCOMMERCE_VERSION", "9.9; rm -rf /")],
    );
    assert!(err.contains("is not a version"), "{err}");
}
