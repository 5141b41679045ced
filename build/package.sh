#!/usr/bin/env bash
# Build dist/shopimind-sidecar_<version>_amd64.deb from dist/shopimind-sidecar:
#   /usr/bin/shopimind-sidecar                           the binary
#   /lib/systemd/system/shopimind-sidecar.service         the unit
#   /etc/shopimind-sidecar/env                            settings (a conffile: kept on upgrade)
#   /etc/shopimind-sidecar/credentials/                   for the secrets (created, mode 0700)
#   /usr/share/doc/shopimind-sidecar/                     README, env.example, integration.toml example
# Run through `make package` (after `make binary`).
set -euo pipefail
cd "$(dirname "$0")/.."
BINARY=dist/shopimind-sidecar
[ -x "$BINARY" ] || { echo "no $BINARY: run 'make binary' first" >&2; exit 1; }
VERSION=$("$BINARY" --version | awk '{print $2}')
ROOT=$(mktemp -d)
trap 'rm -rf "$ROOT"' EXIT
install -D -m 0755 "$BINARY" "$ROOT/usr/bin/shopimind-sidecar"
install -D -m 0644 packaging/shopimind-sidecar.service "$ROOT/lib/systemd/system/shopimind-sidecar.service"
install -D -m 0640 packaging/env.example "$ROOT/etc/shopimind-sidecar/env"
install -d -m 0700 "$ROOT/etc/shopimind-sidecar/credentials"
DOC="$ROOT/usr/share/doc/shopimind-sidecar"
install -D -m 0644 README.md "$DOC/README.md"
install -D -m 0644 packaging/env.example "$DOC/env.example"
install -D -m 0644 sidecar/demo/integration.toml "$DOC/integration.toml.example"
install -d "$ROOT/DEBIAN"
# The one-file bootloader is linked against glibc: depend on the newest symbol version
# it uses.
GLIBC=$(objdump -T "$BINARY" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)
install -d "$DOC"
gzip -9n > "$DOC/changelog.gz" <<CHANGELOG
shopimind-sidecar ($VERSION) stable; urgency=medium

  * Release $VERSION: see README.md.

 -- shopimind-sidecar maintainers <dev@shopimind-sidecar.invalid>  $(date -R -d @"${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")
CHANGELOG
cat > "$DOC/copyright" <<'COPYRIGHT'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: shopimind-sidecar
Comment: /usr/bin/shopimind-sidecar is a one-file PyInstaller build: it carries CPython
 (PSF-2.0) and the Python packages it depends on (trio, hypercorn, quart, quart-trio,
 httpx, cryptography, prometheus-client and their dependencies), each under its own
 licence (MIT, BSD, Apache-2.0 or PSF-2.0); their licence texts ship in their
 distributions.

Files: *
Copyright: 2026 shopimind-sidecar maintainers
License: proprietary
 All rights reserved. Use is governed by the agreement under which this package was
 delivered.
COPYRIGHT
chmod 0644 "$DOC/changelog.gz" "$DOC/copyright"
cat > "$ROOT/DEBIAN/control" <<CONTROL
Package: shopimind-sidecar
Version: $VERSION
Architecture: amd64
Maintainer: shopimind-sidecar maintainers <dev@shopimind-sidecar.invalid>
Section: net
Priority: optional
Depends: libc6 (>= $GLIBC), systemd
Installed-Size: $(du -sk "$ROOT" | cut -f1)
Description: turns a vendor's app into a ShopiMind integration
 One executable, run as a systemd service next to the vendor's app: it
 receives ShopiMind's signed lifecycle webhooks, keeps each shop's API token
 encrypted, provisions resources on ShopiMind's API, syncs the app's data
 incrementally and accepts real-time events. Configure
 /etc/shopimind-sidecar/env, put the secrets in
 /etc/shopimind-sidecar/credentials/ and the declaration in
 /etc/shopimind-sidecar/integration.toml, then:
 systemctl enable --now shopimind-sidecar
CONTROL
echo "/etc/shopimind-sidecar/env" > "$ROOT/DEBIAN/conffiles"
cat > "$ROOT/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = "configure" ]; then
    chmod 0700 /etc/shopimind-sidecar/credentials
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
POSTINST
# Removing the package stops the service and disables it (deb-systemd-invoke does
# nothing where systemd is not running); purging says what it keeps.
cat > "$ROOT/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
if [ "$1" = "remove" ] || [ "$1" = "deconfigure" ]; then
    deb-systemd-invoke stop shopimind-sidecar.service >/dev/null || true
fi
PRERM
cat > "$ROOT/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
case "$1" in
    remove)
        deb-systemd-helper disable shopimind-sidecar.service >/dev/null || true
        systemctl daemon-reload >/dev/null 2>&1 || true
        ;;
    purge)
        deb-systemd-helper purge shopimind-sidecar.service >/dev/null || true
        echo "shopimind-sidecar: kept the database (/var/lib/shopimind-sidecar) and the" \
            "secrets (/etc/shopimind-sidecar/credentials, integration.toml); to delete" \
            "them: rm -rf /var/lib/shopimind-sidecar /etc/shopimind-sidecar"
        ;;
esac
POSTRM
chmod 0755 "$ROOT/DEBIAN/postinst" "$ROOT/DEBIAN/prerm" "$ROOT/DEBIAN/postrm"
OUT="dist/shopimind-sidecar_${VERSION}_amd64.deb"
dpkg-deb --root-owner-group --build "$ROOT" "$OUT" >/dev/null
dpkg-deb --info "$OUT"
dpkg-deb --contents "$OUT"
echo "built $OUT"
