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
cat > "$ROOT/DEBIAN/control" <<CONTROL
Package: shopimind-sidecar
Version: $VERSION
Architecture: amd64
Maintainer: shopimind-sidecar maintainers <dev@shopimind-sidecar.invalid>
Section: net
Priority: optional
Depends: systemd
Installed-Size: $(du -sk "$ROOT" | cut -f1)
Description: turns a vendor's app into a ShopiMind integration
 One executable, run as a systemd service next to the vendor's app: it receives
 ShopiMind's signed lifecycle webhooks, keeps each shop's API token encrypted,
 provisions resources on ShopiMind's API, syncs the app's data incrementally and
 accepts real-time events. Configure /etc/shopimind-sidecar/env, put the secrets in
 /etc/shopimind-sidecar/credentials/ and the declaration in
 /etc/shopimind-sidecar/integration.toml, then: systemctl enable --now shopimind-sidecar
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
chmod 0755 "$ROOT/DEBIAN/postinst"
OUT="dist/shopimind-sidecar_${VERSION}_amd64.deb"
dpkg-deb --root-owner-group --build "$ROOT" "$OUT" >/dev/null
dpkg-deb --info "$OUT"
dpkg-deb --contents "$OUT"
echo "built $OUT"
