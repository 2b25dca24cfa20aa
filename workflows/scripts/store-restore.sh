#!/bin/sh
# Urumi store restore, in two phases (one Job container each):
#
#   store-restore.sh fetch   curl image, S3 mode only: downloads $S3_URL/$BACKUP_ID.tar into
#                            $BACKUP_DIR unless a file with the expected checksum is there.
#   store-restore.sh import  MariaDB image: checks the archive against EXPECT_SHA256, loads
#                            its dump into the database (the database's tables are dropped
#                            first, so it ends exactly as it was at backup time) and replaces
#                            the contents of UPLOADS_DIR with the archive's uploads.
#
# Env (both): BACKUP_ID, BACKUP_DIR, EXPECT_SHA256.
# fetch: S3_URL, S3_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.
# import: DB_HOST, DB_NAME, DB_USER, DB_PASSWORD, UPLOADS_DIR (optional).
#
# Safe to re-run: a second import gives the same database and uploads. A missing archive or a
# checksum mismatch fails before anything is changed. The last line of output is
#   URUMI-RESTORE {"id":"<id>","sha256":"<hex>"}
set -eu

phase="${1:-}"
: "${BACKUP_ID:?BACKUP_ID is required}"
: "${BACKUP_DIR:?BACKUP_DIR is required}"
: "${EXPECT_SHA256:?EXPECT_SHA256 is required}"

die() {
  echo "store-restore: $*" >&2
  exit 1
}

case "$BACKUP_ID" in
  '' | *[!0-9A-Za-z-]*) die "BACKUP_ID '$BACKUP_ID' is not an id" ;;
esac

archive="$BACKUP_DIR/$BACKUP_ID.tar"
sha_of() { sha256sum "$1" | cut -d' ' -f1; }
config_quote() { printf '%s' "$1" | sed 's/[\\"]/\\&/g'; }

report() {
  echo "URUMI-RESTORE {\"id\":\"$BACKUP_ID\",\"sha256\":\"$EXPECT_SHA256\"}"
}

fetch() {
  : "${S3_URL:?S3_URL is required}"
  : "${S3_REGION:?S3_REGION is required}"
  : "${AWS_ACCESS_KEY_ID:?AWS_ACCESS_KEY_ID is required}"
  : "${AWS_SECRET_ACCESS_KEY:?AWS_SECRET_ACCESS_KEY is required}"
  mkdir -p "$BACKUP_DIR"
  if [ -f "$archive" ] && [ "$(sha_of "$archive")" = "$EXPECT_SHA256" ]; then
    echo "backup $BACKUP_ID is already in $BACKUP_DIR"
    report
    return
  fi
  url="${S3_URL%/}/$BACKUP_ID.tar"
  echo "downloading $url"
  rm -f "$archive.partial"
  # The credentials go in a config on stdin (quoted for curl's config syntax), not on the
  # command line.
  printf 'user = "%s:%s"\n' "$(config_quote "$AWS_ACCESS_KEY_ID")" "$(config_quote "$AWS_SECRET_ACCESS_KEY")" |
    curl --config - --fail --silent --show-error --aws-sigv4 "aws:amz:$S3_REGION:s3" \
      -o "$archive.partial" "$url" ||
    die "backup $BACKUP_ID: download of $url failed"
  got=$(sha_of "$archive.partial")
  if [ "$got" != "$EXPECT_SHA256" ]; then
    rm -f "$archive.partial"
    die "backup $BACKUP_ID: checksum mismatch: $url has sha256 $got, expected $EXPECT_SHA256"
  fi
  mv "$archive.partial" "$archive"
  report
}

import() {
  : "${DB_HOST:?DB_HOST is required}"
  : "${DB_NAME:?DB_NAME is required}"
  : "${DB_USER:?DB_USER is required}"
  : "${DB_PASSWORD:?DB_PASSWORD is required}"
  [ -f "$archive" ] || die "backup $BACKUP_ID not found: no archive $archive"
  got=$(sha_of "$archive")
  [ "$got" = "$EXPECT_SHA256" ] ||
    die "backup $BACKUP_ID: checksum mismatch: $archive has sha256 $got, expected $EXPECT_SHA256; nothing restored"
  work=$(mktemp -d "${TMPDIR:-/tmp}/urumi-restore.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  tar -C "$work" -xf "$archive"
  grep -q "\"id\":\"$BACKUP_ID\"" "$work/manifest.json" 2>/dev/null ||
    die "backup $BACKUP_ID: the archive's manifest names another backup (or none)"
  gzip -t "$work/db.sql.gz" || die "backup $BACKUP_ID: db.sql.gz is damaged"
  if [ -f "$work/uploads.tar.gz" ]; then
    gzip -t "$work/uploads.tar.gz" || die "backup $BACKUP_ID: uploads.tar.gz is damaged"
  fi

  export MYSQL_PWD="$DB_PASSWORD"
  db() { mariadb --host="$DB_HOST" --user="$DB_USER" "$@" "$DB_NAME"; }
  # Tables made after the backup must go too: drop every table, then load the dump.
  tables=$(db --batch --skip-column-names -e 'SHOW TABLES') ||
    die "listing the tables of $DB_NAME failed"
  echo "restoring database $DB_NAME from backup $BACKUP_ID"
  {
    echo "SET FOREIGN_KEY_CHECKS=0;"
    printf '%s\n' "$tables" | while IFS= read -r t; do
      # shellcheck disable=SC2016 # the backquotes are SQL's, not the shell's
      [ -z "$t" ] || printf 'DROP TABLE IF EXISTS `%s`;\n' "$(printf '%s' "$t" | sed 's/`/``/g')"
    done
    gunzip -c "$work/db.sql.gz"
    echo "SET FOREIGN_KEY_CHECKS=1;"
  } | db || die "loading backup $BACKUP_ID into $DB_NAME failed"

  if [ -n "${UPLOADS_DIR:-}" ] && [ -d "${UPLOADS_DIR:-}" ] && [ -f "$work/uploads.tar.gz" ]; then
    echo "replacing the contents of $UPLOADS_DIR"
    find "$UPLOADS_DIR" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
    tar -C "$UPLOADS_DIR" -xzf "$work/uploads.tar.gz"
  fi
  report
}

case "$phase" in
  fetch) fetch ;;
  import) import ;;
  *) die "usage: store-restore.sh fetch|import" ;;
esac
