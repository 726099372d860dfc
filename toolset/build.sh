#!/usr/bin/env bash
# Build the helper binaries embedded by the app-container runtime as static
# musl binaries from Debian source packages (bookworm + trixie).
#
#   toolset/build.sh            build (or reuse the cache) -> toolset/out/x86_64/
#   TOOLSET_JOBS=4 toolset/build.sh
#
# Needs root on a Debian 12 host for the first build (apt-get install, deb-src
# entry). A complete cache built by this exact script is reused without root.
set -euo pipefail

ROOT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ARCH=x86_64
OUT=$ROOT_DIR/out/$ARCH
BIN=$OUT/bin
WORK=$ROOT_DIR/work
LOGS=$WORK/logs
DL=$WORK/dl
SRC=$WORK/src
STAMPS=$WORK/stamps
META=$WORK/meta
PREFIX=$WORK/prefix          # static musl libraries + headers (zlib, zstd, ...; libfuse3)
KHEADERS=$WORK/kheaders      # only the kernel UAPI headers, for musl-gcc -idirafter
JOBS=${TOOLSET_JOBS:-$(nproc 2>/dev/null || echo 2)}
SCRIPT_HASH=$(cat "${BASH_SOURCE[0]}" "$ROOT_DIR"/src/* | sha256sum | cut -d' ' -f1)
# A copy of a complete build kept outside the checkout, so that a fresh clone on the same
# machine (CI) restores it in a second instead of building for two minutes.
MACHINE_CACHE=${TOOLSET_CACHE:-/var/cache/flatimage-ts/toolset}/$ARCH-$SCRIPT_HASH
APT_SRC_LIST=/etc/apt/sources.list.d/toolset-deb-src.sources

# tool name -> step that produces it
declare -A TOOL_STEP=(
  [bwrap]=bwrap
  [fuse-overlayfs]=fuse-overlayfs
  [fusermount3]=fuse3
  [mkfs.erofs]=erofs-utils [erofsfuse]=erofs-utils [fsck.erofs]=erofs-utils [dump.erofs]=erofs-utils
  [mksquashfs]=squashfs-tools [unsquashfs]=squashfs-tools
  [busybox]=busybox
  [bash]=bash
  [fim_sigdfl]=fim_sigdfl
  [fim_enter]=fim_enter
  [fim_portal]=fim_portal
  [fim_stub]=fim_stub
  [fim_supervise]=fim_supervise
)
TOOLS=$(printf '%s\n' "${!TOOL_STEP[@]}" | LC_ALL=C sort)

# Debian source packages: step -> "source-package version"
declare -A PKG=(
  [zlib]="zlib 1:1.3.dfsg+really1.3.1-1"
  [zstd]="libzstd 1.5.7+dfsg-1"
  [xz]="xz-utils 5.8.1-1+deb13u1"
  [lz4]="lz4 1.10.0-4"
  [libcap]="libcap2 1:2.66-4+deb12u3"
  [fuse3]="fuse3 3.17.2-3"
  [bwrap]="bubblewrap 0.12.0-1~deb13u1"
  [fuse-overlayfs]="fuse-overlayfs 1.14-1"
  [erofs-utils]="erofs-utils 1.8.6-1"
  [squashfs-tools]="squashfs-tools 1:4.6.1-1"
  [ncurses]="ncurses 6.5+20250216-2"
  [bash]="bash 5.2.37-2"
)
# Debian patches not applied (file names as listed in debian/patches/series):
#  - bubblewrap: replaces an error message with a pointer to Debian-only docs.
#  - lz4: links against a system libxxhash (adds -lxxhash to liblz4.pc); the
#    bundled xxhash is kept in liblz4.a instead.
SKIP_PATCHES=" debian/Change-EPERM-error-message-to-show-Debian-specific-inform.patch
  use-system-xxhash.patch "

BUILD_HOST_PKGS="musl-tools musl-dev meson ninja-build autoconf automake libtool pkg-config
  dpkg-dev make gcc libc6-dev linux-libc-dev patch curl ca-certificates file xz-utils
  binutils util-linux ncurses-bin"

say() { printf 'toolset: %s\n' "$*"; }
die() { printf 'toolset: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- cache check
cache_complete() {
  [[ -f $OUT/.stamp && $(cat "$OUT/.stamp") == "$SCRIPT_HASH" && -f $OUT/manifest.json ]] || return 1
  local t
  for t in $TOOLS; do [[ -x $BIN/$t ]] || return 1; done
}

if cache_complete; then
  say "cached (toolset/out/$ARCH)"
  exit 0
fi
if [[ -f $MACHINE_CACHE/manifest.json ]]; then
  rm -rf "$OUT" && mkdir -p "$(dirname "$OUT")" && cp -a "$MACHINE_CACHE" "$OUT"
  if cache_complete; then
    say "restored from $MACHINE_CACHE"
    exit 0
  fi
fi

if [[ $(id -u) -ne 0 ]]; then
  die "the cache in toolset/out/$ARCH is missing or stale and building needs root
  (it installs build dependencies with apt-get and adds a deb-src entry).
  Run: sudo $0"
fi
[[ $(uname -m) == "$ARCH" ]] || die "only $ARCH is supported (this is $(uname -m))"

mkdir -p "$BIN" "$LOGS" "$DL" "$SRC" "$STAMPS" "$META" "$PREFIX" "$OUT/licenses"
exec 9>"$WORK/.lock"
flock -n 9 || { say "another build is running, waiting ..."; flock 9; }
T_START=$(date +%s)

# --------------------------------------------------------------- step runner
CUR_LOG=/dev/null
# run_step <log-name> <description> <function> [args...]
# Runs the function in a subshell with errexit, output to $LOGS/<log-name>.log; on failure
# prints the last 30 log lines and exits.
run_step() {
  local name=$1 desc=$2; shift 2
  CUR_LOG=$LOGS/$name.log
  local t0 rc
  t0=$(date +%s)
  printf 'toolset: %s ... ' "$desc"
  echo "===== $(date -Is) $desc" >"$CUR_LOG"   # one log per step, rewritten each run
  set +e
  ( set -euo pipefail; "$@" ) >>"$CUR_LOG" 2>&1 </dev/null
  rc=$?
  set -e
  if [[ $rc -ne 0 ]]; then
    echo "FAILED"
    {
      echo "toolset: step failed: $desc (exit $rc); last 30 lines of $CUR_LOG:"
      tail -n 30 "$CUR_LOG" | sed 's/^/  | /'
    } >&2
    exit "$rc"
  fi
  echo "ok ($(($(date +%s) - t0))s)"
}

# A step is redone only when its own recipe changes: the key hashes the step's function, the
# shared helpers it uses, its source package version and its own source file if any.
step_key() { # <step> <function>
  {
    declare -f "$2" musl_env install_bin unpack_src fetch_src from_deb
    echo "${PKG[$1]:-}"
    if [[ -f $ROOT_DIR/src/$1.c ]]; then cat "$ROOT_DIR/src/$1.c"; fi
  } | sha256sum | cut -d' ' -f1
}
step_done() { # <step> <key> [binaries...]: stamp matches and outputs exist
  local step=$1 key=$2; shift 2
  [[ -f $STAMPS/$step && $(cat "$STAMPS/$step") == "$key" ]] || return 1
  local b
  for b in "$@"; do [[ -x $BIN/$b && -f $META/$b ]] || return 1; done
}
mark_done() { echo "$2" >"$STAMPS/$1"; }

# ----------------------------------------------------------------------- apt
RUN_ID="$$.$(date +%s%N)"
apt_update_once() { # at most once per run (steps run in subshells: use a marker file)
  [[ -f $WORK/.apt-updated && $(cat "$WORK/.apt-updated") == "$RUN_ID" ]] && return 0
  apt-get update -q
  echo "$RUN_ID" >"$WORK/.apt-updated"
}

debian_uri() { # URI of the existing Debian main archive entry
  local u
  u=$(grep -hE '^\s*URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null |
      awk '{for (i = 2; i <= NF; i++) print $i}' | grep -E '/debian/?$' | head -n1 || true)
  if [[ -z $u && -f /etc/apt/sources.list ]]; then
    u=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' \
          /etc/apt/sources.list | grep -E '/debian/?$' | head -n1 || true)
  fi
  echo "${u:-http://deb.debian.org/debian}"
}

ensure_apt_sources() {
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg want
  want="Types: deb-src
URIs: $(debian_uri)
Suites: bookworm trixie
Components: main"
  [[ -f $keyring ]] && want+=$'\n'"Signed-By: $keyring"
  if [[ ! -f $APT_SRC_LIST || $(cat "$APT_SRC_LIST") != "$want" ]]; then
    echo "$want" >"$APT_SRC_LIST"
    echo "wrote $APT_SRC_LIST"
    rm -f "$WORK/.apt-updated"
    apt_update_once
  fi
}

ensure_host_pkgs() {
  local p missing=()
  for p in $BUILD_HOST_PKGS; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || missing+=("$p")
  done
  [[ ${#missing[@]} -eq 0 ]] && { echo "all build dependencies installed"; return 0; }
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q --no-install-recommends "${missing[@]}"; then
    apt_update_once
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
}

# ------------------------------------------------------------------ sources
# fetch_src <srcpkg> <version>: downloads the orig tarball (+ debian tarball
# when the archive has it) into $DL, checking apt's SHA256. The .dsc is not
# needed (and 404s for some packages here).
fetch_src() {
  local pkg=$1 ver=$2 d="$DL/$1_${2#*:}"
  [[ -f $d/.complete ]] && return 0
  mkdir -p "$d"
  local uris
  uris=$( (cd "$d" && apt-get source --print-uris -qq "$pkg=$ver") 2>&1 || true)
  if ! grep -q "^'.*\.orig\.tar\." <<<"$uris"; then
    apt_update_once
    uris=$( (cd "$d" && apt-get source --print-uris -qq "$pkg=$ver") 2>&1) ||
      { echo "$uris"; echo "source package $pkg=$ver is not in the apt source index"; return 1; }
  fi
  local url file size hash got
  while read -r url file size hash; do
    url=${url//\'/}
    case $file in
      *.orig.tar.*.asc | *.dsc) continue ;;
      *.orig.tar.* | *.debian.tar.*) ;;
      *) continue ;;
    esac
    if [[ ! -f $d/$file ]]; then
      echo "GET $url"
      if ! curl -fsSL --retry 3 -o "$d/$file.part" "$url"; then
        rm -f "$d/$file.part"
        if [[ $file == *.orig.tar.* ]]; then
          echo "cannot download the upstream tarball $url"; return 1
        fi
        echo "NOTE: $file is not downloadable; using the upstream tarball without Debian patches"
        continue
      fi
      mv "$d/$file.part" "$d/$file"
    fi
    if [[ $hash == SHA256:* ]]; then
      got=$(sha256sum "$d/$file" | cut -d' ' -f1)
      [[ $got == "${hash#SHA256:}" ]] || { rm -f "$d/$file"; echo "sha256 mismatch for $file"; return 1; }
    fi
  done < <(grep "^'" <<<"$uris")
  ls "$d"/*.orig.tar.* >/dev/null
  touch "$d/.complete"
}

# unpack_src <step>: fresh tree in $SRC/<step> with Debian patches applied.
unpack_src() {
  local step=$1 pkg ver
  read -r pkg ver <<<"${PKG[$step]}"
  fetch_src "$pkg" "$ver"
  local d="$DL/${pkg}_${ver#*:}" s="$SRC/$step" orig deb
  orig=$(ls "$d"/*.orig.tar.* | grep -v '\.asc$' | head -n1)
  deb=$(ls "$d"/*.debian.tar.* 2>/dev/null | head -n1 || true)
  rm -rf "$s"; mkdir -p "$s"
  tar -xf "$orig" -C "$s" --strip-components=1
  if [[ -n $deb ]]; then
    tar -xf "$deb" -C "$s"
    if [[ -f $s/debian/patches/series ]]; then
      local p opt
      while read -r p opt; do
        [[ -z $p || $p == \#* ]] && continue
        if [[ " ${SKIP_PATCHES//$'\n'/ } " == *" $p "* ]]; then echo "skipping Debian patch $p"; continue; fi
        echo "applying Debian patch $p"
        patch -d "$s" --batch --forward "${opt:--p1}" <"$s/debian/patches/$p"
      done <"$s/debian/patches/series"
    fi
  fi
}

# ------------------------------------------------------------- musl env
musl_env() {
  export CC=musl-gcc
  export CFLAGS="-O2 -ffunction-sections -fdata-sections -idirafter $KHEADERS"
  export CPPFLAGS="-I$PREFIX/include"
  export LDFLAGS="-L$PREFIX/lib -Wl,--gc-sections"
  export PKG_CONFIG_LIBDIR=$PREFIX/lib/pkgconfig
  export PKG_CONFIG_PATH=
  export PKG_CONFIG_SYSROOT_DIR=
  unset CXX LIBS
}

setup_kheaders() {
  rm -rf "$KHEADERS"; mkdir -p "$KHEADERS"
  ln -s /usr/include/linux "$KHEADERS/linux"
  ln -s /usr/include/asm-generic "$KHEADERS/asm-generic"
  ln -s "/usr/include/$(gcc -dumpmachine)/asm" "$KHEADERS/asm"
  ls "$KHEADERS/linux/fs.h" "$KHEADERS/asm/types.h" >/dev/null
}

install_bin() { # <built file> <tool name> <version> <source> <licenses...>
  local f=$1 name=$2 version=$3 source=$4; shift 4
  install -m 0755 "$f" "$BIN/$name.tmp"
  strip --strip-all "$BIN/$name.tmp"
  local info
  info=$(file -b "$BIN/$name.tmp")
  echo "$name: $info"
  if [[ $info != *"statically linked"* || $info == *"dynamically linked"* ]]; then
    echo "ERROR: $name is not statically linked: $info"
    return 1
  fi
  mv -f "$BIN/$name.tmp" "$BIN/$name"
  {
    echo "version=$version"
    echo "source=$source"
    local l
    for l in "$@"; do echo "license=$l"; done
  } >"$META/$name"
}

# License entries "<SPDX>|<url>"
dsrc_url() { echo "https://sources.debian.org/src/$1/$2/debian/copyright/"; }
lic() { local p v; read -r p v <<<"${PKG[$1]}"; echo "$2|$(dsrc_url "$p" "$v")"; }
MUSL_VER=
lic_musl() { echo "MIT|https://sources.debian.org/src/musl/$MUSL_VER/COPYRIGHT/"; }

copy_copyright() { # <step>
  local f=$SRC/$1/debian/copyright p
  read -r p _ <<<"${PKG[$1]}"
  if [[ -f $f ]]; then cp "$f" "$OUT/licenses/$p.copyright"; fi
}

# ------------------------------------------------------------------- steps
build_zlib() {
  unpack_src zlib; cd "$SRC/zlib"; musl_env
  CFLAGS="$CFLAGS -fPIC" ./configure --static --prefix="$PREFIX" --libdir="$PREFIX/lib"
  make -j"$JOBS" libz.a
  make install
}

build_zstd() {
  unpack_src zstd; cd "$SRC/zstd"; musl_env
  make -C lib -j"$JOBS" libzstd.a-mt CC="$CC" CFLAGS="$CFLAGS -fPIC"
  make -C lib install-static install-includes install-pc PREFIX="$PREFIX" LIBDIR="$PREFIX/lib" \
    CC="$CC" CFLAGS="$CFLAGS -fPIC"
}

build_xz() {
  unpack_src xz; cd "$SRC/xz"; musl_env
  ./configure --prefix="$PREFIX" --libdir="$PREFIX/lib" --disable-shared --enable-static \
    --disable-xz --disable-xzdec --disable-lzmadec --disable-lzmainfo --disable-scripts \
    --disable-lzma-links --disable-doc --disable-nls
  make -j"$JOBS"
  make install
}

build_lz4() {
  unpack_src lz4; cd "$SRC/lz4"; musl_env
  make -C lib -j"$JOBS" liblz4.a liblz4.pc CC="$CC" CFLAGS="$CFLAGS -fPIC" PREFIX="$PREFIX" LIBDIR="$PREFIX/lib"
  make -C lib install BUILD_SHARED=no PREFIX="$PREFIX" LIBDIR="$PREFIX/lib" CC="$CC"
}

build_libcap() {
  unpack_src libcap; cd "$SRC/libcap"; musl_env
  make -C libcap -j"$JOBS" CC="$CC" BUILD_CC=gcc USE_GPERF=no SHARED=no GOLANG=no PAM_CAP=no \
    COPTS="$CFLAGS -fPIC" prefix="$PREFIX" lib=lib libcap.a libcap.pc
  make -C libcap CC="$CC" BUILD_CC=gcc USE_GPERF=no SHARED=no GOLANG=no PAM_CAP=no \
    COPTS="$CFLAGS -fPIC" prefix="$PREFIX" lib=lib DESTDIR= FAKEROOT= RAISE_SETFCAP=no \
    install-static-cap
  ls "$PREFIX/lib/libcap.a" "$PREFIX/include/sys/capability.h" "$PREFIX/lib/pkgconfig/libcap.pc"
}

build_fuse3() {
  unpack_src fuse3; cd "$SRC/fuse3"; musl_env
  # --prefix=/usr so the library looks for /usr/bin/fusermount3 first (then $PATH).
  # IGNORE_MTAB: a mount as root (the holder's namespace) would otherwise run the host's
  # /bin/mount to record itself in /etc/mtab (a symlink to /proc/mounts everywhere now), one
  # fork and exec per FUSE mount, and undo the mount when that program fails or is missing.
  CFLAGS="$CFLAGS -DIGNORE_MTAB" meson setup build --prefix=/usr --libdir=lib --sysconfdir=/etc --buildtype=release \
    -Ddefault_library=static -Dexamples=false -Dtests=false -Dutils=true -Duseroot=false \
    -Dinitscriptdir= -Dudevrulesdir=/usr/lib/udev/rules.d -Db_pie=false \
    -Dc_link_args=-static
  ninja -C build -j"$JOBS"
  rm -rf "$WORK/fuse3-dest"
  DESTDIR="$WORK/fuse3-dest" ninja -C build install
  # private prefix: libfuse3.a + headers + fuse3.pc pointing at $PREFIX
  rm -rf "$PREFIX/include/fuse3"
  cp -a "$WORK/fuse3-dest/usr/include/fuse3" "$PREFIX/include/"
  cp -a "$WORK/fuse3-dest/usr/lib/libfuse3.a" "$PREFIX/lib/"
  sed -e "s|^prefix=.*|prefix=$PREFIX|" "$WORK/fuse3-dest/usr/lib/pkgconfig/fuse3.pc" \
    >"$PREFIX/lib/pkgconfig/fuse3.pc"
  pkg-config --static --libs --cflags fuse3
  copy_copyright fuse3
  install_bin "$WORK/fuse3-dest/usr/bin/fusermount3" fusermount3 3.17.2 "${PKG[fuse3]}" \
    "$(lic fuse3 GPL-2.0-only)" "$(lic_musl)"
}

build_bwrap() {
  unpack_src bwrap; cd "$SRC/bwrap"; musl_env
  CFLAGS="$CFLAGS -include limits.h" meson setup build --buildtype=release -Db_pie=false \
    -Dprefer_static=true -Dc_link_args=-static -Dselinux=disabled -Dman=disabled -Dtests=false \
    -Dbash_completion=disabled -Dzsh_completion=disabled
  ninja -C build -j"$JOBS"
  ./build/bwrap --version
  copy_copyright bwrap
  install_bin build/bwrap bwrap 0.12.0 "${PKG[bwrap]}" \
    "$(lic bwrap LGPL-2.0-or-later)" "$(lic libcap "BSD-3-Clause OR GPL-2.0-only")" "$(lic_musl)"
}

build_fuse_overlayfs() {
  unpack_src fuse-overlayfs; cd "$SRC/fuse-overlayfs"; musl_env
  ./autogen.sh
  PKG_CONFIG="pkg-config --static" LDFLAGS="$LDFLAGS -static" ./configure --prefix=/usr
  make -j"$JOBS"
  ./fuse-overlayfs --version
  cp COPYING "$OUT/licenses/fuse-overlayfs.COPYING"
  install_bin fuse-overlayfs fuse-overlayfs 1.14 "${PKG[fuse-overlayfs]}" \
    "GPL-2.0-or-later|https://sources.debian.org/src/fuse-overlayfs/1.14-1/COPYING/" \
    "$(lic fuse3 LGPL-2.1-only)" "$(lic_musl)"
}

build_erofs() {
  unpack_src erofs-utils; cd "$SRC/erofs-utils"; musl_env
  ./autogen.sh
  PKG_CONFIG="pkg-config --static" ./configure --prefix=/usr \
    --enable-fuse --enable-lz4 --enable-lzma --with-zlib --with-libzstd \
    --without-uuid --without-selinux --without-xxhash --without-libdeflate --without-qpl
  grep -E '^#define (LZ4_ENABLED|LZ4HC_ENABLED|HAVE_LIBLZMA|HAVE_LIBZSTD|HAVE_ZLIB)' config.h
  make -j"$JOBS" LDFLAGS="$LDFLAGS -all-static"
  copy_copyright erofs-utils
  local b common=("$(lic erofs-utils "GPL-2.0-or-later")" "$(lic erofs-utils "GPL-2.0-or-later OR Apache-2.0")"
    "$(lic lz4 BSD-2-Clause)" "$(lic zstd "BSD-3-Clause OR GPL-2.0-only")" "$(lic xz 0BSD)"
    "$(lic zlib Zlib)" "$(lic_musl)")
  for b in mkfs/mkfs.erofs fsck/fsck.erofs dump/dump.erofs; do
    install_bin "$b" "${b#*/}" 1.8.6 "${PKG[erofs-utils]}" "${common[@]}"
  done
  install_bin fuse/erofsfuse erofsfuse 1.8.6 "${PKG[erofs-utils]}" "${common[@]}" \
    "$(lic fuse3 LGPL-2.1-only)"
}

build_squashfs() {
  unpack_src squashfs-tools; cd "$SRC/squashfs-tools/squashfs-tools"; musl_env
  local flags=(CC="$CC" GZIP_SUPPORT=1 XZ_SUPPORT=1 LZ4_SUPPORT=1 ZSTD_SUPPORT=1 LZO_SUPPORT=0
    LZMA_XZ_SUPPORT=0 XATTR_SUPPORT=1 COMP_DEFAULT=zstd
    EXTRA_CFLAGS="$CFLAGS $CPPFLAGS" EXTRA_LDFLAGS="$LDFLAGS -static")
  make -j"$JOBS" "${flags[@]}" mksquashfs unsquashfs
  ./mksquashfs -version | head -n1
  copy_copyright squashfs-tools
  local b
  for b in mksquashfs unsquashfs; do
    install_bin "$b" "$b" 4.6.1 "${PKG[squashfs-tools]}" \
      "$(lic squashfs-tools GPL-2.0-or-later)" "$(lic zlib Zlib)" "$(lic xz 0BSD)" \
      "$(lic lz4 BSD-2-Clause)" "$(lic zstd "BSD-3-Clause OR GPL-2.0-only")" "$(lic_musl)"
  done
}

# Already-static Debian binaries (bookworm): extract from the .deb.
fetch_deb() { # <binary package> -> path of the .deb on stdout
  local d=$DL/debs f
  mkdir -p "$d"; chmod 0755 "$d"
  f=$(ls "$d/$1"_*.deb 2>/dev/null | head -n1 || true)
  if [[ -z $f ]]; then
    (cd "$d" && apt-get download -q "$1") >&2 || { apt_update_once >&2; (cd "$d" && apt-get download -q "$1") >&2; }
    f=$(ls "$d/$1"_*.deb | head -n1)
  fi
  echo "$f"
}

from_deb() { # <binary pkg> <path in deb> <tool> <license SPDX>
  local pkg=$1 path=$2 tool=$3 spdx=$4 deb x ver src srcver glibc
  deb=$(fetch_deb "$pkg")
  ver=$(dpkg-deb -f "$deb" Version)
  src=$(dpkg-deb -f "$deb" Source)         # e.g. "busybox (1:1.35.0-4+deb12u1)"
  if [[ $src =~ ^([^ ]+)\ \((.+)\)$ ]]; then src=${BASH_REMATCH[1]}; srcver=${BASH_REMATCH[2]}
  else src=${src:-$pkg}; srcver=$ver; fi
  glibc=$(dpkg-deb -f "$deb" Built-Using | grep -oE 'glibc \(= [^)]+\)' | sed -E 's/glibc \(= (.*)\)/\1/' || true)
  x=$WORK/deb-$pkg; rm -rf "$x"; dpkg-deb -x "$deb" "$x"
  cp "$x/usr/share/doc/$pkg/copyright" "$OUT/licenses/$src.copyright"
  local upstream=${srcver#*:}; upstream=${upstream%-*}
  local lics=("$spdx|https://sources.debian.org/src/$src/$srcver/debian/copyright/")
  [[ -n $glibc ]] && lics+=("LGPL-2.1-or-later|https://sources.debian.org/src/glibc/$glibc/debian/copyright/")
  install_bin "$x/$path" "$tool" "$upstream" "$src $srcver (binary package $pkg $ver)" "${lics[@]}"
}
build_busybox() { from_deb busybox-static bin/busybox busybox GPL-2.0-only; }
# Our own helper (src/fim_portal.c): the portal's daemon and client.
build_fim_portal() {
  musl_env
  $CC $CFLAGS -static -Os -o "$WORK/fim_portal" "$ROOT_DIR/src/fim_portal.c"
  install_bin "$WORK/fim_portal" fim_portal 1.0 "flatimage-ts toolset/src/fim_portal.c" "$(lic_musl)"
}
# Our own helper (src/fim_enter.c): runs a program inside a running guest (fim-instance exec).
build_fim_enter() {
  musl_env
  $CC $CFLAGS -static -Os -o "$WORK/fim_enter" "$ROOT_DIR/src/fim_enter.c"
  install_bin "$WORK/fim_enter" fim_enter 1.0 "flatimage-ts toolset/src/fim_enter.c" "$(lic_musl)"
}
# Our own helper (src/fim_supervise.c): the run's supervisor (steps, signals, exit status).
build_fim_supervise() {
  musl_env
  $CC $CFLAGS -static -Os -o "$WORK/fim_supervise" "$ROOT_DIR/src/fim_supervise.c"
  install_bin "$WORK/fim_supervise" fim_supervise 1.0 "flatimage-ts toolset/src/fim_supervise.c" "$(lic_musl)"
}
# Our own helper (src/fim_sigdfl.c): restores default signal dispositions, then execs.
build_fim_sigdfl() {
  musl_env
  $CC $CFLAGS -static -Os -o "$WORK/fim_sigdfl" "$ROOT_DIR/src/fim_sigdfl.c"
  install_bin "$WORK/fim_sigdfl" fim_sigdfl 1.0 "flatimage-ts toolset/src/fim_sigdfl.c" "$(lic_musl)"
}
# Our own helper (src/fim_stub.c): the image's ELF head, which extracts the launcher and the
# glibc it runs on and starts it. Built for the oldest x86-64 (it checks the CPU level).
build_fim_stub() {
  musl_env
  $CC $CFLAGS $CPPFLAGS -static -Os -march=x86-64 -o "$WORK/fim_stub" "$ROOT_DIR/src/fim_stub.c" $LDFLAGS -lzstd
  install_bin "$WORK/fim_stub" fim_stub 1.0 "flatimage-ts toolset/src/fim_stub.c" "$(lic_musl)" \
    "$(lic zstd "BSD-3-Clause OR GPL-2.0-only")"
}
# The terminfo part of ncurses, for bash's line editing, with common terminals compiled in:
# an image may have no terminfo database at all (blueprint). Its `tic` (ncurses-bin) builds them.
build_ncurses() {
  unpack_src ncurses; cd "$SRC/ncurses"; musl_env
  ./configure --prefix="$PREFIX" --libdir="$PREFIX/lib" --without-shared --without-debug --with-termlib \
    --without-cxx --without-cxx-binding --without-ada --without-progs --without-tests --without-manpages \
    --disable-db-install --with-terminfo-dirs=/etc/terminfo:/lib/terminfo:/usr/share/terminfo \
    --with-default-terminfo-dir=/usr/share/terminfo \
    --with-fallbacks=linux,vt100,vt220,xterm,xterm-256color,xterm-color,screen,screen-256color,tmux,tmux-256color,rxvt-unicode,alacritty,foot,kitty,dumb
  make -j"$JOBS" -C include
  make -j"$JOBS" -C ncurses libs
  make -C include install
  make -C ncurses install.libs
  ln -sf libtinfow.a "$PREFIX/lib/libtinfo.a"
  copy_copyright ncurses
}
# bash with musl, as upstream's: musl's setlocale accepts every locale name, so the shell that
# starts each guest program never warns about a host locale the image lacks (the glibc-static
# bash-static did, e.g. for LC_ALL=C.UTF-8 in an image without glibc locale data).
build_bash() {
  unpack_src bash; cd "$SRC/bash"; musl_env
  CPPFLAGS="$CPPFLAGS -I$PREFIX/include/ncursesw" bash_cv_termcap_lib=libtinfo \
    ./configure --prefix=/usr --without-bash-malloc --enable-static-link --disable-nls
  make -j"$JOBS"
  local out
  out=$(LC_ALL=xx_XX.UTF-8 ./bash -c 'echo "$BASH_VERSION"' 2>&1)
  echo "$out"
  [[ $out != *warning* ]]
  copy_copyright bash
  install_bin bash bash 5.2.37 "${PKG[bash]}" "$(lic bash GPL-3.0-or-later)" "$(lic ncurses X11)" "$(lic_musl)"
}

# ----------------------------------------------------------------- manifest
json_str() { local s=$1; s=${s//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }
write_manifest() {
  local t first=1 f=$OUT/manifest.json.tmp
  {
    echo "{"
    for t in $TOOLS; do
      local version source lics=() line
      version=$(sed -n 's/^version=//p' "$META/$t")
      source=$(sed -n 's/^source=//p' "$META/$t")
      while IFS= read -r line; do lics+=("$line"); done < <(sed -n 's/^license=//p' "$META/$t")
      [[ $first -eq 1 ]] || echo ","
      first=0
      printf '  %s: {\n' "$(json_str "$t")"
      printf '    "licenses": [\n'
      local i n=${#lics[@]}
      for ((i = 0; i < n; i++)); do
        printf '      {\n        "type": %s,\n        "url": %s\n      }%s\n' \
          "$(json_str "${lics[i]%%|*}")" "$(json_str "${lics[i]#*|}")" "$([[ $i -lt $((n - 1)) ]] && echo ,)"
      done
      printf '    ],\n'
      printf '    "sha256": "%s",\n' "$(sha256sum "$BIN/$t" | cut -d' ' -f1)"
      printf '    "source": %s,\n' "$(json_str "$source")"
      printf '    "version": %s\n' "$(json_str "$version")"
      printf '  }'
    done
    echo
    echo "}"
  } >"$f"
  mv -f "$f" "$OUT/manifest.json"
}

# --------------------------------------------------------------------- main
# Invalidate the cache stamp first: out/ is being modified.
rm -f "$OUT/.stamp"

prepare_host() { ensure_apt_sources; ensure_host_pkgs; }
run_step host "preparing host (apt build dependencies, deb-src entry)" prepare_host
MUSL_VER=$(dpkg-query -W -f='${Version}' musl-dev)
run_step kheaders "checking kernel headers for musl" setup_kheaders

# The static libraries later steps link: a change of one must rebuild what links it, so every
# later step's key includes theirs.
LIBRARY_STEPS=" zlib zstd xz lz4 libcap fuse3 ncurses "
LIBRARY_KEYS=""
step() { # <step> <log/tool name> <description> <function> [tool binaries...]
  local s=$1 name=$2 desc=$3 fn=$4 key; shift 4
  key=$(printf '%s\n%s' "$(step_key "$s" "$fn")" "$LIBRARY_KEYS" | sha256sum | cut -d' ' -f1)
  [[ $LIBRARY_STEPS == *" $s "* ]] && LIBRARY_KEYS+="$s=$key "
  if step_done "$s" "$key" "$@"; then say "$desc: up to date"; return 0; fi
  run_step "$name" "building $desc" "$fn"
  mark_done "$s" "$key"
}

step zlib   zlib   "zlib ${PKG[zlib]#* }"        build_zlib
step zstd   zstd   "zstd ${PKG[zstd]#* }"        build_zstd
step xz     xz     "xz ${PKG[xz]#* }"            build_xz
step lz4    lz4    "lz4 ${PKG[lz4]#* }"          build_lz4
step libcap libcap "libcap ${PKG[libcap]#* }"    build_libcap
step fuse3  fusermount3 "fuse3 3.17.2 (libfuse3.a, fusermount3)" build_fuse3 fusermount3
step bwrap  bwrap  "bwrap 0.12.0"                build_bwrap bwrap
step fuse-overlayfs fuse-overlayfs "fuse-overlayfs 1.14" build_fuse_overlayfs fuse-overlayfs
step erofs-utils erofs-utils "erofs-utils 1.8.6 (mkfs/fsck/dump.erofs, erofsfuse)" build_erofs \
  mkfs.erofs erofsfuse fsck.erofs dump.erofs
step squashfs-tools squashfs-tools "squashfs-tools 4.6.1 (mksquashfs, unsquashfs)" build_squashfs \
  mksquashfs unsquashfs
step busybox busybox "busybox (busybox-static .deb)" build_busybox busybox
step ncurses ncurses "ncurses ${PKG[ncurses]#* } (libtinfo)" build_ncurses
step bash    bash    "bash ${PKG[bash]#* }"          build_bash bash
step fim_sigdfl fim_sigdfl "fim_sigdfl (toolset/src)" build_fim_sigdfl fim_sigdfl
step fim_enter fim_enter "fim_enter (toolset/src)" build_fim_enter fim_enter
step fim_portal fim_portal "fim_portal (toolset/src)" build_fim_portal fim_portal
step fim_stub fim_stub "fim_stub (toolset/src)" build_fim_stub fim_stub
step fim_supervise fim_supervise "fim_supervise (toolset/src)" build_fim_supervise fim_supervise

# Final verification: every tool present and statically linked.
for t in $TOOLS; do
  [[ -x $BIN/$t ]] || die "missing $BIN/$t"
  info=$(file -b "$BIN/$t")
  [[ $info == *"statically linked"* ]] || die "$t is not statically linked: $info"
done
write_manifest
echo "$SCRIPT_HASH" >"$OUT/.stamp"
if mkdir -p "$(dirname "$MACHINE_CACHE")" 2>/dev/null; then
  rm -rf "$MACHINE_CACHE.tmp" && cp -a "$OUT" "$MACHINE_CACHE.tmp" && rm -rf "$MACHINE_CACHE" && mv "$MACHINE_CACHE.tmp" "$MACHINE_CACHE"
fi
say "done in $(($(date +%s) - T_START))s: $(du -sh "$BIN" | cut -f1) in toolset/out/$ARCH/bin ($(echo $TOOLS | wc -w) tools)"
