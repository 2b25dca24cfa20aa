//! WooCommerce's backup and restore pods: `workflows/scripts/store-backup.sh` and
//! `store-restore.sh` in the MariaDB image (which has `mariadb-dump`, `mariadb`, tar, gzip
//! and sha256sum), with the database credentials from the store's Secret and WordPress's
//! content volume (its `wp-content/uploads`) mounted.
//!
//! ```text
//!   PVC storage:  backup  [dump  (mariadb)]            → /backups on PVC store-backups
//!                 restore [import (mariadb)]           ← /backups on PVC store-backups
//!   S3 storage:   backup  init [dump (mariadb)] → main [upload (curl)]  /backups: emptyDir
//!                 restore init [fetch (curl)]   → main [import (mariadb)]
//! ```
//!
//! The main container prints the result line the step reads (`URUMI-BACKUP {…}` or
//! `URUMI-RESTORE {…}`). Every container runs as `www-data` (33), so the files a restore
//! writes into the uploads belong to Apache as before.

use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    PersistentVolumeClaimVolumeSource, PodSpec, SecretKeySelector, Volume, VolumeMount,
};

use super::super::{
    ARCHIVE_CONFIGMAP, ArchiveJob, ArchiveKind, BACKUP_PVC, BACKUP_S3_SECRET, BACKUP_SCRIPT_KEY,
    RESTORE_SCRIPT_KEY,
};
use super::objects::{CONTENT_PVC, WWW_DATA_UID};
use crate::store::render::{
    StoreSpec, env, resources, restricted_container, restricted_pod, secret_env,
};
use crate::store::settings::StoreSettings;

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: read_only.then_some(true),
        ..Default::default()
    }
}

fn s3_secret_env(name: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: BACKUP_S3_SECRET.into(),
                key: name.into(),
                optional: None,
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// The backup or restore pod of `job`.
#[must_use]
pub fn archive_pod(spec: &StoreSpec<'_>, s: &StoreSettings, job: &ArchiveJob) -> PodSpec {
    let _ = spec;
    let mut common = vec![
        env("BACKUP_ID", &job.backup_id.to_string()),
        env("BACKUP_DIR", "/backups"),
        env("HOME", "/tmp"),
    ];
    if let Some(sha) = &job.expect_sha256 {
        common.push(env("EXPECT_SHA256", sha));
    }
    let prune: Vec<String> = job.prune.iter().map(ToString::to_string).collect();
    common.push(env("PRUNE", &prune.join(" ")));
    let mut db_env = common.clone();
    db_env.extend([
        env("DB_HOST", "mariadb"),
        env("DB_NAME", "wordpress"),
        env("DB_USER", "wordpress"),
        secret_env("DB_PASSWORD", "db-password"),
        env("UPLOADS_DIR", "/content/wp-content/uploads"),
    ]);
    let mut s3_env = common;
    if let Some((url, region)) = &job.s3 {
        s3_env.extend([
            env("S3_URL", url),
            env("S3_REGION", region),
            s3_secret_env("AWS_ACCESS_KEY_ID"),
            s3_secret_env("AWS_SECRET_ACCESS_KEY"),
        ]);
        // The dump container must not prune locally: in S3 mode the upload prunes objects.
        if let Some(p) = db_env.iter_mut().find(|e| e.name == "PRUNE") {
            p.value = Some(String::new());
        }
    }
    let script = match job.kind {
        ArchiveKind::Backup => BACKUP_SCRIPT_KEY,
        ArchiveKind::Restore => RESTORE_SCRIPT_KEY,
    };
    let container = |name: &str, image: &str, phase: &str, env: Vec<EnvVar>, db: bool| {
        let mut mounts = vec![
            mount("scripts", "/scripts", true),
            mount("backups", "/backups", false),
        ];
        if db {
            mounts.push(mount(
                "content",
                "/content",
                job.kind == ArchiveKind::Backup,
            ));
        }
        Container {
            name: name.into(),
            image: Some(image.to_owned()),
            command: Some(vec![
                "/bin/sh".into(),
                format!("/scripts/{script}"),
                phase.into(),
            ]),
            env: Some(env),
            // 500m / 512Mi: beside MariaDB's and WordPress's limits (750m / 1Gi each) it fits
            // the default plan's `limits.cpu` of 2 and `limits.memory` of 3Gi.
            resources: Some(resources("100m", "256Mi", "500m", "512Mi")),
            security_context: Some(restricted_container()),
            volume_mounts: Some(mounts),
            ..Container::default()
        }
    };
    let db_container =
        |phase: &str| container(phase, &spec.pins.mariadb, phase, db_env.clone(), true);
    let s3_container = |phase: &str| container(phase, &s.images.curl, phase, s3_env.clone(), false);
    let (init, main) = match (job.kind, job.s3.is_some()) {
        (ArchiveKind::Backup, false) => (None, db_container("dump")),
        (ArchiveKind::Backup, true) => (Some(db_container("dump")), s3_container("upload")),
        (ArchiveKind::Restore, false) => (None, db_container("import")),
        (ArchiveKind::Restore, true) => (Some(s3_container("fetch")), db_container("import")),
    };
    let backups = if job.s3.is_some() {
        Volume {
            name: "backups".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        }
    } else {
        Volume {
            name: "backups".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: BACKUP_PVC.into(),
                read_only: None,
            }),
            ..Volume::default()
        }
    };
    PodSpec {
        init_containers: init.map(|c| vec![c]),
        containers: vec![main],
        restart_policy: Some("Never".into()),
        security_context: Some(restricted_pod(WWW_DATA_UID, None)),
        automount_service_account_token: Some(false),
        volumes: Some(vec![
            Volume {
                name: "scripts".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: ARCHIVE_CONFIGMAP.into(),
                    ..Default::default()
                }),
                ..Volume::default()
            },
            backups,
            Volume {
                name: "content".into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: CONTENT_PVC.into(),
                    read_only: None,
                }),
                ..Volume::default()
            },
        ]),
        ..PodSpec::default()
    }
}
