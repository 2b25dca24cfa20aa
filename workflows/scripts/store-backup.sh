#!/bin/sh
# Urumi store backup, in two phases (one Job container each):
#
#   store-backup.sh dump    MariaDB image: mariadb-dump (--single-transaction) of the store's
#                           database and a tar of its uploads, packed with a manifest into
#                           $BACKUP_DIR/$BACKUP_ID.tar (+ .sha256).
#   store-backup.sh upload  curl image: PUTs that archive to $S3_URL/$BACKUP_ID.tar (AWS
#                           SigV4), checks the stored length, deletes pruned objects.
#
# Env (both): BACKUP_ID, BACKUP_DIR, PRUNE (space-separated ids to delete; may be empty).
# dump: DB_HOST, DB_NAME, DB_USER, DB_PASSWORD, UPLOADS_DIR (optional). Without S3_URL
#       (backups kept on a per-store PVC) it also deletes the PRUNE archives from BACKUP_DIR.
# upload: S3_URL, S3_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.
#
# Safe to re-run: an archive whose .sha256 matches is never dumped again, an object already
# stored with the same length and checksum is not uploaded again. The last line of output is
#   URUMI-BACKUP {"id":"<id>","size":<bytes>,"sha256":"<hex>"}
set -eu

phase="${1:-}"
: "${BACKUP_ID:?BACKUP_ID is required}"
: "${BACKUP_DIR:?BACKUP_DIR is required}"
PRUNE="${PRUNE:-}"

die() {
  echo "store-backup: $*" >&2
  exit 1
}

# Ids become file and object names: only uuid characters.
valid_id() {
  case "$1" in
    '' | *[!0-9A-Za-z-]*) return 1 ;;
  esac
}
valid_id "$BACKUP_ID" || die "BACKUP_ID '$BACKUP_ID' is not an id"
for id in $PRUNE; do
  valid_id "$id" || die "PRUNE entry '$id' is not an id"
done

archive="$BACKUP_DIR/$BACKUP_ID.tar"
sumfile="$BACKUP_DIR/$BACKUP_ID.sha256"

sha_of() { sha256sum "$1" | cut -d' ' -f1; }
config_quote() { printf '%s' "$1" | sed 's/[\\"]/\\&/g'; }
size_of() { wc -c <"$1" | tr -d ' '; }

# The archive exists and its .sha256 names its checksum.
archive_ok() {
  [ -f "$archive" ] && [ -f "$sumfile" ] || return 1
  [ "$(cut -d' ' -f1 "$sumfile")" = "$(sha_of "$archive")" ]
}

report() {
  echo "URUMI-BACKUP {\"id\":\"$BACKUP_ID\",\"size\":$(size_of "$archive"),\"sha256\":\"$(sha_of "$archive")\"}"
}

dump() {
  : "${DB_HOST:?DB_HOST is required}"
  : "${DB_NAME:?DB_NAME is required}"
  : "${DB_USER:?DB_USER is required}"
  : "${DB_PASSWORD:?DB_PASSWORD is required}"
  mkdir -p "$BACKUP_DIR"
  if archive_ok; then
    echo "backup $BACKUP_ID is already in $BACKUP_DIR; not dumping again"
  else
    work="$BACKUP_DIR/.$BACKUP_ID.work"
    rm -rf "$work" "$archive.partial" "$sumfile.partial"
    mkdir -p "$work"
    echo "dumping database $DB_NAME"
    # The password goes through the environment, never the command line. A pipeline's status
    # is its last command's, so a failed dump leaves a marker.
    {
      MYSQL_PWD="$DB_PASSWORD" mariadb-dump --single-transaction --quick --no-tablespaces \
        --default-character-set=utf8mb4 --host="$DB_HOST" --user="$DB_USER" "$DB_NAME" ||
        touch "$work/dump-failed"
    } | gzip -n >"$work/db.sql.gz"
    [ ! -e "$work/dump-failed" ] || die "mariadb-dump of $DB_NAME failed"
    files="manifest.json db.sql.gz"
    uploads=null
    if [ -n "${UPLOADS_DIR:-}" ] && [ -d "${UPLOADS_DIR:-}" ]; then
      echo "archiving uploads from $UPLOADS_DIR"
      # The directory's entries, not "." itself: restoring "." would chmod and utime the
      # target directory, which a restore running as another user may not own.
      (cd "$UPLOADS_DIR" && find . -mindepth 1 -maxdepth 1 -print | tar -czf "$work/uploads.tar.gz" -T -)
      files="$files uploads.tar.gz"
      uploads="{\"file\":\"uploads.tar.gz\",\"sha256\":\"$(sha_of "$work/uploads.tar.gz")\"}"
    else
      echo "no uploads directory; archiving the database only"
    fi
    printf '{"format":1,"id":"%s","created":"%s","database":{"name":"%s","file":"db.sql.gz","sha256":"%s"},"uploads":%s}\n' \
      "$BACKUP_ID" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$DB_NAME" "$(sha_of "$work/db.sql.gz")" "$uploads" \
      >"$work/manifest.json"
    # shellcheck disable=SC2086 # $files is a list of plain names
    tar -C "$work" -cf "$archive.partial" $files
    mv "$archive.partial" "$archive"
    echo "$(sha_of "$archive")  $BACKUP_ID.tar" >"$sumfile.partial"
    mv "$sumfile.partial" "$sumfile"
    rm -rf "$work"
    echo "wrote $archive"
  fi
  if [ -z "${S3_URL:-}" ]; then
    for id in $PRUNE; do
      if [ "$id" = "$BACKUP_ID" ]; then
        echo "not pruning $id: it is the backup being made"
        continue
      fi
      if [ -e "$BACKUP_DIR/$id.tar" ] || [ -e "$BACKUP_DIR/$id.sha256" ]; then
        echo "pruning backup $id"
        rm -f "$BACKUP_DIR/$id.tar" "$BACKUP_DIR/$id.sha256"
      fi
    done
  fi
  report
}

# curl with SigV4 (curl >= 7.87 signs S3 uploads as UNSIGNED-PAYLOAD); the credentials go
# in a config on stdin (quoted for curl's config syntax), not on the command line.
s3() {
  printf 'user = "%s:%s"\n' "$(config_quote "$AWS_ACCESS_KEY_ID")" "$(config_quote "$AWS_SECRET_ACCESS_KEY")" |
    curl --config - --silent --show-error --aws-sigv4 "aws:amz:$S3_REGION:s3" "$@"
}

# "<content-length> <x-amz-meta-sha256>" of an object, or nothing when it is not stored.
head_object() {
  s3 --fail --head "$1" 2>/dev/null | tr -d '\r' | awk -F': *' '
    tolower($1) == "content-length" { len = $2 }
    tolower($1) == "x-amz-meta-sha256" { sum = $2 }
    END { if (len != "") print len, sum }'
}

upload() {
  : "${S3_URL:?S3_URL is required}"
  : "${S3_REGION:?S3_REGION is required}"
  : "${AWS_ACCESS_KEY_ID:?AWS_ACCESS_KEY_ID is required}"
  : "${AWS_SECRET_ACCESS_KEY:?AWS_SECRET_ACCESS_KEY is required}"
  archive_ok || die "backup $BACKUP_ID: $archive is missing or does not match $sumfile"
  size=$(size_of "$archive")
  sum=$(sha_of "$archive")
  base="${S3_URL%/}"
  url="$base/$BACKUP_ID.tar"
  if [ "$(head_object "$url")" = "$size $sum" ]; then
    echo "backup $BACKUP_ID is already stored at $url"
  else
    echo "uploading $archive to $url"
    s3 --fail -o /dev/null -H "x-amz-meta-sha256: $sum" -T "$archive" "$url" ||
      die "upload of backup $BACKUP_ID to $url failed"
    stored=$(head_object "$url")
    [ "${stored%% *}" = "$size" ] ||
      die "backup $BACKUP_ID: $url holds '${stored%% *}' bytes after the upload, expected $size"
  fi
  for id in $PRUNE; do
    if [ "$id" = "$BACKUP_ID" ]; then
      echo "not pruning $id: it is the backup being made"
      continue
    fi
    code=$(s3 -o /dev/null -w '%{http_code}' -X DELETE "$base/$id.tar") ||
      die "deleting $base/$id.tar failed"
    case "$code" in
      200 | 204 | 404) echo "pruned backup $id" ;;
      *) die "deleting $base/$id.tar answered HTTP $code" ;;
    esac
  done
  report
}

case "$phase" in
  dump) dump ;;
  upload) upload ;;
  *) die "usage: store-backup.sh dump|upload" ;;
esac
