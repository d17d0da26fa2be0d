#!/usr/bin/env bash
# Installs postern into a scratch prefix, builds examples/hello_transport out of tree against
# it with find_package(postern), and checks that the installed postern finds, probes and
# delivers through that plugin — the path docs/plugins.md walks a plugin author through.
set -euo pipefail
build_dir=$1
source_dir=$2
work=$(mktemp -d)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

prefix=$work/prefix
cmake --install "$build_dir" --prefix "$prefix" > "$work/install.log"
for f in bin/postern include/postern/plugin.hpp include/postern/transport.hpp \
         lib/postern/plugins/postern-file.so lib/cmake/postern/postern-config.cmake \
         lib/cmake/postern/postern_plugin.cmake; do
  [ -e "$prefix/$f" ] || fail "install is missing $f"
done

cmake -S "$source_dir/examples/hello_transport" -B "$work/hello" -G Ninja \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release > "$work/configure.log" || { cat "$work/configure.log"; fail "configure"; }
cmake --build "$work/hello" > "$work/build.log" || { cat "$work/build.log"; fail "build"; }
[ -f "$work/hello/postern-hello.so" ] || fail "postern-hello.so was not built"

mkdir -p "$work/etc"
cat > "$work/etc/postern.toml" <<TOML
[server]
data_dir = "$work/data"
plugin_dirs = ["$prefix/lib/postern/plugins", "$work/hello"]
[delivery]
transports = ["hello"]
poll_interval = "100ms"
[transports.hello]
log_file = "hello.log"
TOML

table=$("$prefix/bin/postern" -c "$work/etc/postern.toml" plugins)
echo "$table"
echo "$table" | grep -E '^hello +transport +1\.0\.0 +yes ' > /dev/null || fail "the hello plugin is not listed as available"
echo "$table" | grep -E '^file +transport .* yes ' > /dev/null || fail "the installed file plugin is not found"

# Without plugin_dirs, the installed binary finds its own plugins next to it.
printf '[server]\ndata_dir = "%s/data2"\n' "$work" > "$work/etc/default-dirs.toml"
"$prefix/bin/postern" -c "$work/etc/default-dirs.toml" plugins | grep -q "$prefix/lib/postern/plugins/postern-file.so" \
  || fail "the installed binary does not look in $prefix/lib/postern/plugins by default"

"$prefix/bin/postern" -c "$work/etc/postern.toml" serve 2> "$work/serve.log" &
server_pid=$!
printf 'Subject: out of tree\n\nhello\n' | "$prefix/bin/postern" sendmail -C "$work/etc/postern.toml" -i ann@example.com
for _ in $(seq 1 100); do
  grep -q 'to=<ann@example.com>' "$work/data/hello.log" 2>/dev/null && break
  sleep 0.1
done
grep -q 'to=<ann@example.com>' "$work/data/hello.log" 2>/dev/null || { cat "$work/serve.log"; fail "the hello plugin did not deliver"; }
grep -q 'said hello for' "$work/serve.log" || fail "the plugin's log line is missing"
echo "PASS: plugin built out of tree with find_package(postern) was loaded and delivered"
