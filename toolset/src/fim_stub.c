/* fim_stub: the ELF head of every image. A small static program (musl) that runs on any
 * x86-64 Linux, glibc or not. It checks the CPU, extracts once per build id and user the
 * zstd-compressed launcher (Bun's compiled executable) and the glibc loader and libraries it
 * needs into the per-user runtime directory, each verified by its sha256 and renamed into
 * place, and runs the launcher through that loader (no host library is ever loaded into the
 * launcher, and the image file stops being executed, so it can be written).
 *
 * What it reads is the boot table that follows the image header (scripts/assemble.ts writes
 * it; core/image.ts describes the layout):
 *   "FIMBOOT\x02" u32 table size, u32 part count, u64 reserved-space offset, u32 CPU level,
 *   u32 size B of the brief commands' list, build id[64], loader[64], launcher[64], library
 *   dir[32], then per part: path[64] (relative to the build directory), u64 offset, u64
 *   stored size, u64 size, sha256[32] of the stored bytes, u32 mode, u32 zero; then B bytes:
 *   the names of the commands that declare themselves brief (core/plugin.ts), each ended by
 *   a NUL.
 *
 * The runtime directory R is the first usable of $XDG_RUNTIME_DIR/fim/app,
 * /tmp/fim/app/<uid>, ${XDG_CACHE_HOME:-~/.cache}/fim/app: every directory on the way is
 * opened without following symlinks and must belong to root or to us (writable by others only
 * when sticky), R itself is ours and 0700, not mounted noexec, and has room. The build lives
 * in R/<build id>; R/<build id>/.lock is held shared by every process of the build (the
 * launcher inherits the descriptor, FIM_BOOT_LOCK_FD), so a sweep never removes one in use.
 *
 * Before a run's launcher starts, the stub may start the namespace holder that mounts its
 * layers, from the plan the last such start saved (see "head start" below).
 *
 * Errors are printed as the runtime prints them (E/C lines, exit 125). */
#define _GNU_SOURCE
#include <cpuid.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#ifndef FIM_STUB_SHA256_TEST /* the digest test builds with the host's gcc, without the tool set */
#include <zstd.h>
#endif

#ifdef __x86_64__
#include <immintrin.h>
#endif

/* ------------------------------------------------------------------ messages */

static int debug_on;
static pid_t self_pid;

static void line(char level, const char *fmt, va_list ap) {
  char text[4096];
  int n = snprintf(text, sizeof text, "%c::boot::%d::", level, (int)self_pid);
  n += vsnprintf(text + n, sizeof text - n - 1, fmt, ap);
  if (n > (int)sizeof text - 2) n = sizeof text - 2;
  text[n++] = '\n';
  int fd = (level == 'D' || level == 'I') ? 1 : 2;
  for (int done = 0; done < n;) {
    ssize_t w = write(fd, text + done, n - done);
    if (w <= 0) break;
    done += w;
  }
}

static void debug(const char *fmt, ...) {
  if (!debug_on) return;
  va_list ap;
  va_start(ap, fmt);
  line('D', fmt, ap);
  va_end(ap);
}

static void say(char level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  line(level, fmt, ap);
  va_end(ap);
}

/* An error of the image or the host: the message, the context, the final line, exit 125. */
__attribute__((noreturn)) static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  line('E', fmt, ap);
  va_end(ap);
  say('C', "Failure to relocate binary");
  say('C', "The program exited with an error");
  exit(125);
}

/* -------------------------------------------------------------------- sha256 */

typedef struct {
  uint32_t h[8];
  uint64_t length;
  uint8_t block[64];
  size_t used;
} sha256_ctx;

static const uint32_t K256[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_blocks_portable(uint32_t h[8], const uint8_t *p, size_t blocks) {
  for (; blocks > 0; blocks--, p += 64) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++) w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
      uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
      uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
      uint32_t t1 = k + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
      uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      k = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += k;
  }
}

#ifdef __x86_64__
/* The SHA extensions (most x86-64 CPUs since 2017): about 8x the portable code, which
 * matters for the ~40 MB launcher hashed on a first start. Each group of four rounds
 * computes its message words from the four previous groups (msg1/msg2), then runs the
 * rounds two by two. */
__attribute__((target("sha,sse4.1"))) static void sha256_blocks_shani(uint32_t h[8], const uint8_t *p, size_t blocks) {
  const __m128i swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[0]), 0xB1); /* CDAB */
  __m128i s1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[4]), 0x1B);  /* EFGH */
  __m128i s0 = _mm_alignr_epi8(tmp, s1, 8);                                       /* ABEF */
  s1 = _mm_blend_epi16(s1, tmp, 0xF0);                                            /* CDGH */
  for (; blocks > 0; blocks--, p += 64) {
    __m128i abef = s0, cdgh = s1, g[4];
    for (int i = 0; i < 16; i++) {
      if (i < 4) {
        g[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), swap);
      } else {
        __m128i next = _mm_sha256msg1_epu32(g[i % 4], g[(i - 3) % 4]);
        next = _mm_add_epi32(next, _mm_alignr_epi8(g[(i - 1) % 4], g[(i - 2) % 4], 4));
        g[i % 4] = _mm_sha256msg2_epu32(next, g[(i - 1) % 4]);
      }
      __m128i m = _mm_add_epi32(g[i % 4], _mm_loadu_si128((const __m128i *)&K256[4 * i]));
      s1 = _mm_sha256rnds2_epu32(s1, s0, m);
      s0 = _mm_sha256rnds2_epu32(s0, s1, _mm_shuffle_epi32(m, 0x0E));
    }
    s0 = _mm_add_epi32(s0, abef);
    s1 = _mm_add_epi32(s1, cdgh);
  }
  tmp = _mm_shuffle_epi32(s0, 0x1B); /* FEBA */
  s1 = _mm_shuffle_epi32(s1, 0xB1);  /* DCHG */
  _mm_storeu_si128((__m128i *)&h[0], _mm_blend_epi16(tmp, s1, 0xF0)); /* DCBA */
  _mm_storeu_si128((__m128i *)&h[4], _mm_alignr_epi8(s1, tmp, 8));   /* HGFE */
}

static int have_shani(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
  int sha = (b >> 29) & 1;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  return sha && (c >> 19 & 1) && (c >> 9 & 1); /* + SSE4.1, SSSE3 */
}
#endif

static void (*sha256_blocks)(uint32_t *, const uint8_t *, size_t) = sha256_blocks_portable;

static void sha256_pick(void) {
#ifdef __x86_64__
  if (have_shani()) sha256_blocks = sha256_blocks_shani;
#endif
}

static void sha256_init(sha256_ctx *c) {
  static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  memcpy(c->h, iv, sizeof iv);
  c->length = 0;
  c->used = 0;
}

static void sha256_update(sha256_ctx *c, const uint8_t *p, size_t n) {
  c->length += n;
  if (c->used > 0) {
    size_t take = 64 - c->used < n ? 64 - c->used : n;
    memcpy(c->block + c->used, p, take);
    c->used += take, p += take, n -= take;
    if (c->used < 64) return;
    sha256_blocks(c->h, c->block, 1);
    c->used = 0;
  }
  if (n >= 64) {
    sha256_blocks(c->h, p, n / 64);
    p += n / 64 * 64;
    n %= 64;
  }
  memcpy(c->block, p, n);
  c->used = n;
}

static void sha256_final(sha256_ctx *c, uint8_t out[32]) {
  uint64_t bits = c->length * 8;
  uint8_t pad[72] = {0x80};
  size_t padding = (c->used < 56 ? 56 : 120) - c->used;
  for (int i = 0; i < 8; i++) pad[padding + i] = (uint8_t)(bits >> (56 - 8 * i));
  sha256_update(c, pad, padding + 8);
  for (int i = 0; i < 8; i++) {
    out[4 * i] = c->h[i] >> 24, out[4 * i + 1] = c->h[i] >> 16, out[4 * i + 2] = c->h[i] >> 8, out[4 * i + 3] = c->h[i];
  }
}

#ifdef FIM_STUB_SHA256_TEST
/* test/unit/stub.test.ts: `fim_stub_sha256 <file>` prints the digest of the file with both
 * implementations, so that each is checked against another sha256 on this machine. */
int main(int argc, char **argv) {
  if (argc != 2) return 2;
  FILE *f = fopen(argv[1], "rb");
  if (!f) return 2;
  static uint8_t data[1 << 20];
  size_t n = fread(data, 1, sizeof data, f);
  fclose(f);
  void (*impls[2])(uint32_t *, const uint8_t *, size_t) = {sha256_blocks_portable, NULL};
#ifdef __x86_64__
  if (have_shani()) impls[1] = sha256_blocks_shani;
#endif
  for (int k = 0; k < 2; k++) {
    if (!impls[k]) { printf("-\n"); continue; }
    sha256_blocks = impls[k];
    /* Fed in uneven pieces, so that the buffering is exercised too. */
    sha256_ctx c;
    uint8_t out[32];
    sha256_init(&c);
    for (size_t done = 0, step = 1; done < n; done += step, step = step * 3 % 997 + 1) sha256_update(&c, data + done, done + step > n ? n - done : step);
    sha256_final(&c, out);
    for (int i = 0; i < 32; i++) printf("%02x", out[i]);
    printf("\n");
  }
  return 0;
}
#else

/* ------------------------------------------------------------------- the CPU */

#ifdef __x86_64__
/* x86-64-v2 (what Bun's x64 build needs): SSE3, SSSE3, SSE4.1, SSE4.2, POPCNT, CMPXCHG16B,
 * LAHF/SAHF; v3 adds AVX, AVX2, BMI1/2, F16C, FMA, LZCNT, MOVBE (and the OS saving AVX state). */
static void check_cpu(unsigned level) {
  unsigned a, b, c, d, c1 = 0, b7 = 0, cx = 0;
  if (__get_cpuid(1, &a, &b, &c, &d)) c1 = c;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) b7 = b;
  if (__get_cpuid(0x80000001, &a, &b, &c, &d)) cx = c;
  struct { unsigned level, word, bit; const char *name; } need[] = {
    {2, 1, 0, "sse3"}, {2, 1, 9, "ssse3"}, {2, 1, 13, "cx16"}, {2, 1, 19, "sse4_1"}, {2, 1, 20, "sse4_2"},
    {2, 1, 23, "popcnt"}, {2, 3, 0, "lahf_lm"}, {3, 1, 12, "fma"}, {3, 1, 22, "movbe"}, {3, 1, 27, "osxsave"},
    {3, 1, 28, "avx"}, {3, 1, 29, "f16c"}, {3, 2, 3, "bmi1"}, {3, 2, 5, "avx2"}, {3, 2, 8, "bmi2"}, {3, 3, 5, "abm"},
  };
  char missing[256] = "";
  for (size_t i = 0; i < sizeof need / sizeof *need; i++) {
    unsigned word = need[i].word == 1 ? c1 : need[i].word == 2 ? b7 : cx;
    if (need[i].level <= level && !(word >> need[i].bit & 1)) {
      strcat(missing, " ");
      strcat(missing, need[i].name);
    }
  }
  if (missing[0]) {
    fail("This CPU lacks instructions the runtime needs (x86-64-v%u; missing:%s): the image runs on x86-64 CPUs from about %s and later",
         level, missing, level <= 2 ? "2009 (Intel Nehalem, AMD Bulldozer)" : "2015 (Intel Haswell, AMD Excavator)");
  }
}
#else
static void check_cpu(unsigned level) { (void)level; }
#endif

/* -------------------------------------------------------------- the image */

#define PART_MAX 32
#define BRIEF_MAX 4096
#define RESERVED_SIZE (4ULL * 1024 * 1024)

struct part {
  char path[65];
  uint64_t offset, stored, size;
  uint8_t sha256[32];
  uint32_t mode;
};

struct table {
  uint64_t reserved;
  uint32_t cpu_level, count;
  char build[65], loader[65], launcher[65], libdir[33];
  struct part parts[PART_MAX];
  /* NUL-ended names, back to back (`brief_size` bytes). */
  char brief[BRIEF_MAX];
  uint32_t brief_size;
};

static const char *image_path;

static uint64_t le(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

static int read_at(int fd, void *buffer, size_t n, uint64_t offset) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = pread(fd, (char *)buffer + done, n - done, (off_t)(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    done += r;
  }
  return 0;
}

/* A fixed-size field holding a relative name: printable, NUL-padded, no "..". */
static int name_field(char *out, const uint8_t *field, size_t size, int slashes) {
  size_t n = strnlen((const char *)field, size);
  if (n == 0 || n == size) return -1;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = field[i];
    if (!(ch == '/' ? slashes : (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || strchr("_.+-", ch))) return -1;
  }
  memcpy(out, field, n);
  out[n] = 0;
  if (out[0] == '.' || out[0] == '/' || strstr(out, "/.") || strstr(out, "//") || out[n - 1] == '/') return -1;
  return 0;
}

static void read_table(int fd, uint64_t file_size, struct table *t) {
  uint8_t ident[64];
  if (read_at(fd, ident, sizeof ident, 0) != 0 || memcmp(ident, "\177ELF", 4) != 0) fail("'%s' is not an ELF executable", image_path);
  uint64_t end = le(ident + 0x28, 8) + le(ident + 0x3a, 2) * le(ident + 0x3c, 2);
  uint8_t prefix[44]; /* magic, u32 length, sha256 of the JSON (the launcher's to check) */
  if (end + sizeof prefix > file_size || read_at(fd, prefix, sizeof prefix, end) != 0 || memcmp(prefix, "FIMAGE\0\x03", 8) != 0) {
    fail("'%s' has no image header after its launcher (offset %llu): not an image, or a damaged one", image_path, (unsigned long long)end);
  }
  uint64_t at = end + sizeof prefix + le(prefix + 8, 4);
  uint8_t head[256];
  if (at + sizeof head > file_size || read_at(fd, head, sizeof head, at) != 0 || memcmp(head, "FIMBOOT\x02", 8) != 0) {
    fail("'%s' is truncated or damaged: its boot table is missing (offset %llu)", image_path, (unsigned long long)at);
  }
  uint32_t size = le(head + 8, 4);
  t->count = le(head + 12, 4);
  t->reserved = le(head + 16, 8);
  t->cpu_level = le(head + 24, 4);
  t->brief_size = le(head + 28, 4);
  if (t->count == 0 || t->count > PART_MAX || t->brief_size > BRIEF_MAX || size != 256 + 128 * t->count + t->brief_size) {
    fail("'%s' has a damaged boot table (%u parts and %u bytes of names in %u bytes)", image_path, t->count, t->brief_size, size);
  }
  if (t->reserved + RESERVED_SIZE > file_size) {
    fail("'%s' is truncated: the reserved space (offset %llu, 4 MiB) extends past the end of the file (%llu bytes)", image_path,
         (unsigned long long)t->reserved, (unsigned long long)file_size);
  }
  if (name_field(t->build, head + 32, 64, 0) || name_field(t->loader, head + 96, 64, 1) || name_field(t->launcher, head + 160, 64, 1) ||
      name_field(t->libdir, head + 224, 32, 0)) {
    fail("'%s' has a damaged boot table (names)", image_path);
  }
  uint8_t entries[128 * PART_MAX];
  if (read_at(fd, entries, 128 * t->count, at + 256) != 0) fail("'%s' is truncated: its boot table is cut short", image_path);
  int has_loader = 0, has_launcher = 0;
  for (uint32_t i = 0; i < t->count; i++) {
    const uint8_t *e = entries + 128 * i;
    struct part *p = &t->parts[i];
    if (name_field(p->path, e, 64, 1) || strchr(p->path, '/') == NULL || strchr(strchr(p->path, '/') + 1, '/') != NULL) {
      fail("'%s' has a damaged boot table (part %u)", image_path, i);
    }
    p->offset = le(e + 64, 8), p->stored = le(e + 72, 8), p->size = le(e + 80, 8);
    memcpy(p->sha256, e + 88, 32);
    p->mode = le(e + 120, 4) & 0755;
    if (p->offset < at + size || p->stored > t->reserved || p->offset > t->reserved - p->stored) {
      fail("'%s' has a damaged boot table ('%s' lies outside the image's boot area)", image_path, p->path);
    }
    has_loader |= strcmp(p->path, t->loader) == 0;
    has_launcher |= strcmp(p->path, t->launcher) == 0;
  }
  if (!has_loader || !has_launcher) fail("'%s' has a damaged boot table (no loader or launcher)", image_path);
  if (t->brief_size > 0 && (read_at(fd, t->brief, t->brief_size, at + 256 + 128 * t->count) != 0 || t->brief[t->brief_size - 1] != 0)) {
    fail("'%s' has a damaged boot table (the brief commands' names)", image_path);
  }
}

/* ------------------------------------------------------ the runtime directory */

static uid_t uid;
static gid_t gid;

/* How open_path treats each directory on a path: 'x' must exist; 'c' is created (0700) if
 * missing; 's' is shared by all users (created 01777, like /tmp); 'p' is private: ours, and
 * made 0700. */
enum { EXISTING = 'x', CREATED = 'c', SHARED = 's', PRIVATE = 'p' };

static uid_t overflow_uid(void) {
  static long value = -1;
  if (value < 0) {
    FILE *f = fopen("/proc/sys/kernel/overflowuid", "re");
    if (!f || fscanf(f, "%ld", &value) != 1) value = 65534;
    if (f) fclose(f);
  }
  return (uid_t)value;
}

/* Opens the directory `name` under `at` without following a symlink, and checks on the
 * descriptor that nobody else can swap what is below it: it belongs to root or to us, and if
 * others may write to it, it is sticky. Returns the descriptor, or -1 with `why` set. */
static int open_dir(int at, const char *name, int kind, const char **why) {
  int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT && kind != EXISTING) {
    int made = mkdirat(at, name, kind == SHARED ? 01777 : 0700), failure = errno;
    fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC); /* made, or made by another process */
    if (fd >= 0 && made == 0 && kind == SHARED) fchmod(fd, 01777); /* the umask narrowed it; checked below like any other */
    if (fd < 0 && made != 0 && failure != EEXIST) errno = failure; /* why it could not be made (a full filesystem, a quota) */
  }
  if (fd < 0) {
    *why = errno == ELOOP || errno == ENOTDIR ? "is a symbolic link or not a directory" : strerror(errno);
    return -1;
  }
  struct stat st;
  fstat(fd, &st);
  /* In a user namespace that does not map root (a rootless container, bwrap as a user),
   * root's directories show the overflow uid: accepted for the system's own directories on
   * the way (/, /tmp, /home…), never for those shared or made by images. */
  int root_owned = st.st_uid == 0 || (kind == EXISTING && st.st_uid == overflow_uid());
  if (kind == PRIVATE ? st.st_uid != uid : !root_owned && st.st_uid != uid) {
    *why = "belongs to another user";
  } else if ((st.st_mode & S_IWOTH || (st.st_mode & S_IWGRP && st.st_gid != gid)) && !(st.st_mode & S_ISVTX)) {
    *why = "is writable by other users";
  } else if (kind == PRIVATE && (st.st_mode & 077) && fchmod(fd, 0700) != 0) {
    *why = "is accessible by other users and cannot be made private";
  } else {
    return fd;
  }
  close(fd);
  return -1;
}

/* Walks an absolute path from / with open_dir. `kinds` has one letter per component, or is
 * shorter: the first components are then EXISTING. `where` gets the part walked so far. */
static int open_path(const char *path, const char *kinds, const char **why, char *where, size_t where_size) {
  char copy[PATH_MAX];
  where[0] = 0;
  if (path[0] != '/' || strlen(path) >= sizeof copy) {
    *why = "is not an absolute path";
    snprintf(where, where_size, "%s", path);
    return -1;
  }
  strcpy(copy, path);
  char *names[128];
  int n = 0;
  for (char *s = strtok(copy, "/"); s && n < 128; s = strtok(NULL, "/")) names[n++] = s;
  int given = (int)strlen(kinds), fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  for (int i = 0; i < n && fd >= 0; i++) {
    int kind = i >= n - given ? kinds[i - (n - given)] : EXISTING;
    int next = open_dir(fd, names[i], kind, why);
    size_t used = strlen(where);
    snprintf(where + used, where_size - used, "/%s", names[i]);
    close(fd);
    fd = next;
  }
  return fd;
}

struct root {
  char path[PATH_MAX];
  const char *kinds;
  int xdg;
  int fd;
  const char *why; /* when it cannot be used */
  char where[PATH_MAX];
  char no_room[64]; /* why's text when it is about room */
};

static int is_tmpfs(int fd) {
  struct statfs s;
  return fstatfs(fd, &s) == 0 && s.f_type == 0x01021994;
}

/* The candidates, most preferred first. */
static int candidates(struct root *roots) {
  int n = 0;
  const char *xdg = getenv("XDG_RUNTIME_DIR");
  if (xdg && *xdg) {
    snprintf(roots[n].path, PATH_MAX, "%s/fim/app", xdg);
    roots[n].kinds = "pp", roots[n++].xdg = 1;
  } else {
    debug("XDG_RUNTIME_DIR is not set: not a candidate for the runtime directory");
  }
  snprintf(roots[n].path, PATH_MAX, "/tmp/fim/app/%u", (unsigned)uid);
  roots[n].kinds = "xssp", roots[n++].xdg = 0;
  const char *cache = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  if ((cache && cache[0] == '/') || (home && home[0] == '/')) {
    char base[PATH_MAX], real[PATH_MAX];
    if (cache && cache[0] == '/') snprintf(base, sizeof base, "%s", cache);
    else snprintf(base, sizeof base, "%s/.cache", home);
    /* Links on the way (Silverblue's /home -> /var/home, a ~/.cache moved to another disk) are
     * resolved first: the walk then follows none, and checks every directory it meets, so a
     * link can only lead where the checks would have let the path be. */
    char *slash = strrchr(base, '/');
    if (realpath(base, real)) {
      snprintf(roots[n].path, PATH_MAX, "%s/fim/app", real);
    } else if (slash && slash != base) {
      *slash = 0; /* not made yet: its parent's links */
      if (realpath(base, real)) snprintf(roots[n].path, PATH_MAX, "%s/%s/fim/app", real, slash + 1);
      else snprintf(roots[n].path, PATH_MAX, "%s/%s/fim/app", base, slash + 1);
    } else {
      snprintf(roots[n].path, PATH_MAX, "%s/fim/app", base);
    }
    roots[n].kinds = "cpp", roots[n++].xdg = 0;
  }
  for (int i = 0; i < n; i++) roots[i].fd = -1, roots[i].why = NULL, roots[i].where[0] = 0;
  return n;
}

static void open_root(struct root *r) {
  if (r->xdg) {
    /* The spec says it is ours and 0700; one that is not is not used (nor changed). */
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    struct stat st;
    if (lstat(xdg, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != uid || (st.st_mode & 077)) {
      r->why = "is not a directory of this user with mode 0700";
      snprintf(r->where, sizeof r->where, "%s", xdg);
      return;
    }
  }
  r->fd = open_path(r->path, r->kinds, &r->why, r->where, sizeof r->where);
  if (r->fd < 0) return;
  struct statvfs v;
  if (fstatvfs(r->fd, &v) == 0 && (v.f_flag & (ST_NOEXEC | ST_RDONLY))) {
    r->why = v.f_flag & ST_RDONLY ? "is on a read-only filesystem" : "is on a filesystem mounted noexec";
    snprintf(r->where, sizeof r->where, "%s", r->path);
    close(r->fd);
    r->fd = -1;
  }
}

enum { EXTRACTED = 0, NO_ROOM = 1 };

static uint64_t free_bytes(int fd) {
  struct statvfs v;
  return fstatvfs(fd, &v) == 0 ? (uint64_t)v.f_bavail * v.f_frsize : 0;
}

/* Free inodes; UINT64_MAX where the filesystem has no fixed number of them (btrfs says 0). */
static uint64_t free_inodes(int fd) {
  struct statvfs v;
  if (fstatvfs(fd, &v) != 0) return 0;
  return v.f_files == 0 ? UINT64_MAX : (uint64_t)v.f_favail;
}

/* The build's bin/ and library directory; NO_ROOM when the filesystem is full. */
static int make_build_dir(int build, const char *name) {
  if (mkdirat(build, name, 0700) == 0 || errno == EEXIST) return EXTRACTED;
  if (errno == ENOSPC || errno == EDQUOT) return NO_ROOM;
  fail("Could not create '%s' in the runtime directory: %s", name, strerror(errno));
}

/* -------------------------------------------------------------- extraction */

static int part_present(int build, const struct part *p) {
  struct stat st;
  return fstatat(build, p->path, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) && st.st_uid == uid && (uint64_t)st.st_size == p->size;
}

/* <name>.<pid>.tmp files in a directory of the build: all of them when we are the build's
 * only user (a killed first start left them), else those whose process is gone. */
static void sweep_temporaries(int build, const char *sub, int alone) {
  int fd = openat(build, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return;
  DIR *dir = fdopendir(fd);
  if (!dir) {
    close(fd);
    return;
  }
  struct dirent *e;
  while ((e = readdir(dir)) != NULL) {
    size_t n = strlen(e->d_name);
    if (n < 5 || strcmp(e->d_name + n - 4, ".tmp") != 0) continue;
    const char *dot = e->d_name + n - 5;
    while (dot > e->d_name && *dot >= '0' && *dot <= '9') dot--;
    if (*dot != '.' || dot == e->d_name + n - 5) continue;
    long pid = strtol(dot + 1, NULL, 10);
    if (alone || (kill((pid_t)pid, 0) != 0 && errno == ESRCH)) {
      if (unlinkat(dirfd(dir), e->d_name, 0) == 0) debug("Removed the stale temporary '%s/%s'", sub, e->d_name);
    }
  }
  closedir(dir);
}

static const char *part_label(const struct table *t, const struct part *p) {
  if (strcmp(p->path, t->launcher) == 0) return "launcher";
  if (strcmp(p->path, t->loader) == 0) return "loader";
  return "library";
}

/* Decompresses one part into <path>.<pid>.tmp, hashing the stored bytes on the way, and
 * renames it into place once its hash, its size and the zstd frames are all right. A damaged
 * part is fatal; a full filesystem returns NO_ROOM (the caller tries the next directory). */
/* Writes the piece decompressed so far and empties it; 0, or the errno of the failure. */
static int write_piece(int fd, ZSTD_outBuffer *piece, uint64_t *written) {
  for (size_t done = 0; done < piece->pos;) {
    ssize_t w = write(fd, (const uint8_t *)piece->dst + done, piece->pos - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return errno;
    done += (size_t)w;
  }
  *written += piece->pos;
  piece->pos = 0;
  return 0;
}

/* The decompressed bytes are written in whole pieces of OUT_PIECE at offsets that are
 * multiples of it: the page cache then holds the launcher in large folios, and every later
 * start of the build maps its 113 MB with fewer page faults (a Bun program written in 1 MiB
 * pieces starts 4 % slower than one written in 2 MiB ones, and one written as `bun build`
 * writes it 7-18 % slower, on Linux 6.18). */
#define OUT_PIECE (4 << 20)

static int extract(int image, int build, const struct table *t, const struct part *p, int sync) {
  static uint8_t in[1 << 20], out[OUT_PIECE];
  char temporary[96];
  snprintf(temporary, sizeof temporary, "%s.%d.tmp", p->path, (int)self_pid);
  int fd = openat(build, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0 && (errno == ENOSPC || errno == EDQUOT)) return NO_ROOM;
  if (fd < 0) fail("Could not create '%s' in the runtime directory: %s", temporary, strerror(errno));
  ZSTD_DCtx *z = ZSTD_createDCtx();
  sha256_ctx hash;
  sha256_init(&hash);
  uint64_t read_bytes = 0, written = 0;
  size_t status = 1;
  const char *damage = NULL;
  int no_room = 0, write_error = 0;
  ZSTD_outBuffer output = {out, sizeof out, 0};
  while (read_bytes < p->stored && !damage && !no_room && !write_error) {
    size_t n = p->stored - read_bytes < sizeof in ? p->stored - read_bytes : sizeof in;
    if (read_at(image, in, n, p->offset + read_bytes) != 0) {
      damage = "cannot be read (the image is truncated?)";
      break;
    }
    sha256_update(&hash, in, n);
    read_bytes += n;
    ZSTD_inBuffer input = {in, n, 0};
    for (;;) {
      status = ZSTD_decompressStream(z, &output, &input);
      if (ZSTD_isError(status)) {
        damage = "is not valid zstd data";
        break;
      }
      if (written + output.pos > p->size) {
        damage = "decompresses to more bytes than recorded";
        break;
      }
      /* A whole piece, or the last one once the frame has ended. */
      int full = output.pos == output.size;
      int ended = read_bytes == p->stored && input.pos == input.size && status == 0;
      if (full || (ended && output.pos > 0)) {
        int error = write_piece(fd, &output, &written);
        if (error == ENOSPC || error == EDQUOT) no_room = 1;
        else if (error) write_error = error;
        if (error) break;
        if (full) continue; /* zstd may hold more of this input */
      }
      if (input.pos == input.size) break;
    }
  }
  ZSTD_freeDCtx(z);
  uint8_t digest[32];
  sha256_final(&hash, digest);
  if (!damage && !no_room && !write_error) {
    if (memcmp(digest, p->sha256, 32) != 0) damage = "does not match its sha256";
    else if (status != 0 || written != p->size) damage = "is incomplete";
  }
  if (!damage && !no_room && !write_error && sync && fdatasync(fd) != 0) write_error = errno;
  if (close(fd) != 0 && !write_error && !no_room) {
    if (errno == ENOSPC || errno == EDQUOT) no_room = 1;
    else write_error = errno;
  }
  if (!damage && !no_room && !write_error) {
    if (fchmodat(build, temporary, p->mode, 0) != 0 || renameat(build, temporary, build, p->path) != 0) write_error = errno;
  }
  if (damage || no_room || write_error) unlinkat(build, temporary, 0);
  if (damage) {
    fail("The %s '%s' stored in '%s' is damaged: it %s (offset %llu, %llu bytes); get the image again", part_label(t, p), p->path, image_path, damage,
         (unsigned long long)p->offset, (unsigned long long)p->stored);
  }
  if (write_error) fail("Could not write '%s' in the runtime directory: %s", p->path, strerror(write_error));
  if (!no_room) debug("Extracted '%s' (%llu bytes)", p->path, (unsigned long long)p->size);
  return no_room ? NO_ROOM : EXTRACTED;
}

/* Whether the build's lock, taken shared, is still that of R/<build>: it has not been
 * removed, nor its directory renamed away. */
static int lock_current(int root, const char *build, int fd, int lock) {
  struct stat st, opened, named;
  return fstat(lock, &st) == 0 && st.st_nlink > 0 && fstat(fd, &opened) == 0 && fstatat(root, build, &named, AT_SYMLINK_NOFOLLOW) == 0 &&
         opened.st_dev == named.st_dev && opened.st_ino == named.st_ino;
}

/* Opens R/<build> and takes its lock shared; a sweep (which takes it exclusively, renames
 * the directory away, then removes it) may have done so meanwhile, or been killed half-way:
 * then it is made again. The build is started by its path, so the directory must still be
 * the one the path names. */
static int open_build(int root, const char *build, int *lock, const char **why) {
  for (int attempt = 0; attempt < 5; attempt++) {
    int fd = open_dir(root, build, PRIVATE, why);
    if (fd < 0) return -1;
    *lock = openat(fd, ".lock", O_RDWR | O_CREAT | O_NOFOLLOW, 0600); /* inherited by the launcher */
    if (*lock < 0) {
      *why = strerror(errno);
      close(fd);
      return -1;
    }
    while (flock(*lock, LOCK_SH) != 0 && errno == EINTR) {}
    if (lock_current(root, build, fd, *lock)) return fd;
    close(*lock);
    close(fd);
  }
  *why = "is being removed by another process";
  return -1;
}

/* ------------------------------------------------------------- head start */

/* A start that mounts waits for its namespace holder (plugins/sandbox/holder.ts) to mount the
 * layers: about as long as the launcher takes to load. The holder's command line is known
 * before the launcher runs, as the last start of this image with the same data-directory
 * choice saved it: so the stub starts that holder at once and hands it over
 * (FIM_BOOT_HOLDER: its pid, then the descriptors of its readiness pipe, the start lock, the
 * guests' lock and the data directory's lock). The launcher keeps it when its own plan is the
 * same, and ends it otherwise: nobody can have joined it, as the start lock is held until
 * then, and no guest runs before the launcher's own checks. Anything unexpected (no plan,
 * another command, the image changed, a lock taken, a data directory that is not only ours)
 * skips the head start, and the launcher does it all.
 *
 * The plan is R/<build>/starts/<name> (FIM_BOOT_START_PLAN, where the launcher saves it):
 * NUL-ended keys and values, "commands" (the launch commands it serves, space-separated),
 * "image" (dev:inode:size:mtime in ns of the image it was made for), "data", "mounts", then
 * "argv" once per word of the holder's command line. Its name is the first 16 hex digits of
 * the sha256 of what decides the data directory: the image's path, then FIM_DIR_DATA (and
 * the working directory when it is relative), or HOME and XDG_DATA_HOME when it is unset. */

/* The command argv names: anything but a `fim-` word is the default command's, as the
 * dispatch plugin says. */
static const char *command_name(int argc, char **argv) {
  return argc < 2 || strncmp(argv[1], "fim-", 4) != 0 ? "default" : argv[1];
}

#define START_PLAN_MAX (256 << 10)
#define START_ARGV_MAX 4096

struct start_plan {
  const char *commands, *image, *data, *mounts;
  char *argv[START_ARGV_MAX + 1];
  int argc;
};

static void hash_word(sha256_ctx *c, const char *prefix, const char *word) {
  sha256_update(c, (const uint8_t *)prefix, strlen(prefix));
  if (word) sha256_update(c, (const uint8_t *)word, strlen(word));
  sha256_update(c, (const uint8_t *)"", 1);
}

/* R/<build>/starts/<name> of this start. */
static void start_plan_path(char out[PATH_MAX], const char *app, const char *self) {
  sha256_ctx c;
  uint8_t digest[32];
  sha256_init(&c);
  hash_word(&c, "", self);
  const char *data = getenv("FIM_DIR_DATA");
  if (data) {
    hash_word(&c, "+", data);
    static char cwd[PATH_MAX];
    if (data[0] != '/') hash_word(&c, "", getcwd(cwd, sizeof cwd) ? cwd : "");
  } else {
    const char *home = getenv("HOME"), *xdg = getenv("XDG_DATA_HOME");
    hash_word(&c, "-", NULL);
    hash_word(&c, home ? "+" : "-", home);
    hash_word(&c, xdg ? "+" : "-", xdg);
  }
  sha256_final(&c, digest);
  char name[17];
  for (int i = 0; i < 8; i++) snprintf(name + 2 * i, 3, "%02x", digest[i]);
  if (snprintf(out, PATH_MAX, "%s/starts/%s", app, name) >= PATH_MAX) out[0] = 0;
}

/* Reads and splits the plan; 0 when it is missing or not well formed. */
static int read_start_plan(const char *path, struct start_plan *p) {
  static char text[START_PLAN_MAX];
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return 0;
  size_t size = 0;
  for (ssize_t got; size < sizeof text && (got = read(fd, text + size, sizeof text - size)) != 0; size += (size_t)got) {
    if (got < 0) {
      if (errno == EINTR) got = 0;
      else break;
    }
  }
  close(fd);
  if (size == 0 || size == sizeof text || text[size - 1] != 0) return 0;
  memset(p, 0, sizeof *p);
  for (size_t at = 0; at < size;) {
    const char *key = text + at;
    at += strlen(key) + 1;
    if (at >= size) return 0;
    char *value = text + at;
    at += strlen(value) + 1;
    if (!strcmp(key, "commands")) p->commands = value;
    else if (!strcmp(key, "image")) p->image = value;
    else if (!strcmp(key, "data")) p->data = value;
    else if (!strcmp(key, "mounts")) p->mounts = value;
    else if (!strcmp(key, "argv") && p->argc < START_ARGV_MAX) p->argv[p->argc++] = value;
    else return 0;
  }
  return p->commands && p->image && p->data && p->data[0] == '/' && p->mounts && p->argc > 0 && p->argv[0][0] == '/';
}

static int serves(const char *commands, const char *name) {
  size_t length = strlen(name);
  for (const char *at = commands; *at;) {
    size_t word = strcspn(at, " ");
    if (word == length && !strncmp(at, name, length)) return 1;
    at += word + (at[word] == ' ');
  }
  return 0;
}

/* Whether DIR (or DIR/SUB) is a directory of ours that nobody else may write (missing: when
 * optional). The launcher checks more before a guest runs (core/data-dir.ts). */
static int only_ours(const char *dir, const char *sub, int optional) {
  char path[PATH_MAX];
  struct stat s;
  if (snprintf(path, sizeof path, sub ? "%s/%s" : "%s", dir, sub) >= (int)sizeof path) return 0;
  if (lstat(path, &s) != 0) return optional && errno == ENOENT;
  return S_ISDIR(s.st_mode) && s.st_uid == uid && (s.st_mode & 022) == 0;
}

/* Opens DIR/NAME (it exists: the plan's start made it) and locks it without waiting; -1 when taken. */
static int lock_file(const char *dir, const char *name, int operation) {
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) return -1;
  int fd = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW);
  if (fd >= 0 && flock(fd, operation | LOCK_NB) != 0) close(fd), fd = -1;
  return fd;
}

static void close_from(int lowest) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, lowest, ~0U, 0) == 0) return;
#endif
  for (int fd = lowest; fd < 4096; fd++) close(fd);
}

/* The holder's process: its own session, stdin /dev/null, stdout the readiness pipe, stderr
 * holder.err, fd 3 the data directory's lock, nothing else; the environment the launcher
 * would give it (with FIM_BIN_SELF and FIM_DIR_APP, so that its servers that run the
 * launcher again, the union filesystem's, find the image; the host's preloads set aside are
 * for guests). */
static _Noreturn void exec_holder(const struct start_plan *p, int ready, int errors, int data) {
  unsetenv("FIM_HOST_LD_PRELOAD");
  unsetenv("FIM_HOST_LD_AUDIT");
  setsid();
  int null = open("/dev/null", O_RDWR);
  int given[4] = {null, ready, errors, data};
  for (int i = 0; i < 4; i++) given[i] = fcntl(given[i], F_DUPFD, 10); /* clear of 0-3 */
  for (int i = 0; i < 4; i++) {
    if (given[i] < 0 || dup2(given[i], i) < 0) _exit(125);
  }
  close_from(4);
  execv(p->argv[0], p->argv);
  dprintf(2, "C::boot::%d::Could not start the namespace holder '%s': %s\n", (int)getpid(), p->argv[0], strerror(errno));
  _exit(125);
}

/* Starts the holder of the plan at PATH when it is this start's, and hands it over. */
static void start_holder(const char *path, const struct stat *image, const char *app, int argc, char **argv) {
  static struct start_plan p;
  if (!read_start_plan(path, &p)) return;
  char identity[96];
  snprintf(identity, sizeof identity, "%llu:%llu:%lld:%llu", (unsigned long long)image->st_dev, (unsigned long long)image->st_ino, (long long)image->st_size,
           (unsigned long long)image->st_mtim.tv_sec * 1000000000ULL + (unsigned long long)image->st_mtim.tv_nsec);
  size_t within = strlen(app);
  if (!serves(p.commands, command_name(argc, argv)) || strcmp(p.image, identity) || strncmp(p.mounts, app, within) || strncmp(p.mounts + within, "/mounts/", 8) ||
      !only_ours(p.data, NULL, 0) || !only_ours(p.data, "root", 0) || !only_ours(p.data, "layers", 1)) {
    debug("No head start for the namespace holder: the last start's plan is not this one's");
    return;
  }
  /* As the launcher takes them (holder.ts, beginJoin), but without waiting: busy, it waits. */
  int start = lock_file(p.mounts, "start.lock", LOCK_EX), guests = -1, data = -1, ready[2] = {-1, -1}, errors = -1;
  if (start >= 0) guests = lock_file(p.mounts, "guests.lock", LOCK_SH);
  if (guests >= 0) data = lock_file(p.data, ".lock", LOCK_EX);
  char errors_path[PATH_MAX];
  if (data >= 0 && snprintf(errors_path, sizeof errors_path, "%s/holder.err", p.mounts) < (int)sizeof errors_path && pipe(ready) == 0) {
    errors = open(errors_path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  }
  pid_t pid = errors >= 0 ? fork() : -1;
  if (pid == 0) exec_holder(&p, ready[1], errors, data);
  if (errors >= 0) close(errors);
  if (ready[1] >= 0) close(ready[1]);
  if (pid < 0) {
    debug("No head start for the namespace holder: %s", data < 0 ? "a run on its data directory holds a lock" : strerror(errno));
    int opened[] = {ready[0], data, guests, start};
    for (size_t i = 0; i < sizeof opened / sizeof *opened; i++) {
      if (opened[i] >= 0) close(opened[i]);
    }
    return;
  }
  char handed[96];
  snprintf(handed, sizeof handed, "%d,%d,%d,%d,%d", (int)pid, ready[0], start, guests, data);
  setenv("FIM_BOOT_HOLDER", handed, 1);
  debug("Started the namespace holder of the last start's plan (pid %d)", (int)pid);
}

static void head_start(const struct stat *image, const char *app, int argc, char **argv) {
  static char path[PATH_MAX];
  unsetenv("FIM_BOOT_HOLDER");
  unsetenv("FIM_BOOT_START_PLAN");
  start_plan_path(path, app, image_path);
  if (!path[0]) return;
  start_holder(path, image, app, argc, argv);
  setenv("FIM_BOOT_START_PLAN", path, 1); /* where the launcher saves its plan */
}

/* ------------------------------------------------------------------- replay */

/* A start whose plan the launcher made before, with nothing it depends on changed, is
 * replayed here without the launcher (plugins/sandbox/replay.ts says what the record holds
 * and why that is all a plan depends on): the record's dependencies are checked again, the
 * namespace holder it joined must still run and be free to join, and then this process does
 * what the launcher did: the same locks, the same instance directory, the same lines printed,
 * and the hand-over to the same supervisor. Any difference, or anything unexpected, and the
 * launcher runs as always (and records the plan anew).
 *
 * The record is R/<build>/replays/<name> (FIM_BOOT_REPLAY, where the launcher keeps it, and
 * FIM_BOOT_REPLAY_KEY); its name is the first 16 hex digits of the key, the sha256 of what
 * the planning took from outside the host's files: the image's path and identity, the user's
 * ids and groups, the working directory, which of stdin/stdout/stderr are terminals, the
 * umask, the command line and the environment (sorted), but for the variables a desktop
 * sets anew at every start (PASSED_THROUGH): the planning never sees them, and a replay
 * passes on the start's own. */

#define REPLAY_MAX (4 << 20)
#define REPLAY_FIELDS 16384
#define INSTANCE_MARK "\x01I\x01"
#define STARTED_MARK "\x01S\x01"
#define PID_MARK "\x01P\x01"

static char replay_key[65], replay_path[PATH_MAX];

/* As plugins/sandbox/replay.ts, PASSED_THROUGH. */
static const char *const passed_through[] = {"DESKTOP_STARTUP_ID", "XDG_ACTIVATION_TOKEN", "GIO_LAUNCHED_DESKTOP_FILE_PID"};
#define PASSED_COUNT (sizeof passed_through / sizeof *passed_through)

/* Whether the environment entry NAME=value is one of them. */
static int passed_name(const char *entry) {
  for (size_t i = 0; i < PASSED_COUNT; i++) {
    size_t n = strlen(passed_through[i]);
    if (!strncmp(entry, passed_through[i], n) && entry[n] == '=') return 1;
  }
  return 0;
}

static int by_text(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

extern char **environ;

static void make_replay_key(const struct stat *image, int argc, char **argv) {
  sha256_ctx c;
  uint8_t digest[32];
  char word[PATH_MAX + 64];
  sha256_init(&c);
  hash_word(&c, "record ", "1");
  hash_word(&c, "image ", image_path);
  snprintf(word, sizeof word, "%llu:%llu:%lld:%lld.%09ld", (unsigned long long)image->st_dev, (unsigned long long)image->st_ino, (long long)image->st_size,
           (long long)image->st_mtim.tv_sec, image->st_mtim.tv_nsec);
  hash_word(&c, "identity ", word);
  gid_t groups[1024];
  int count = getgroups(1024, groups);
  snprintf(word, sizeof word, "%u:%u:%d", (unsigned)uid, (unsigned)gid, count);
  hash_word(&c, "ids ", word);
  for (int i = 0; i < count; i++) {
    snprintf(word, sizeof word, "%u", (unsigned)groups[i]);
    hash_word(&c, "group ", word);
  }
  hash_word(&c, "cwd ", getcwd(word, sizeof word) ? word : "-");
  snprintf(word, sizeof word, "%d%d%d", isatty(0), isatty(1), isatty(2));
  hash_word(&c, "terminals ", word);
  mode_t mask = umask(0); /* the modes of what the launcher made */
  umask(mask);
  snprintf(word, sizeof word, "%o", (unsigned)mask);
  hash_word(&c, "umask ", word);
  for (int i = 0; i < argc; i++) hash_word(&c, "arg ", argv[i]);
  size_t n = 0;
  while (environ[n]) n++;
  char **sorted = malloc((n + 1) * sizeof *sorted);
  if (!sorted) return;
  memcpy(sorted, environ, n * sizeof *sorted);
  qsort(sorted, n, sizeof *sorted, by_text);
  for (size_t i = 0; i < n; i++) {
    if (!passed_name(sorted[i])) hash_word(&c, "env ", sorted[i]);
  }
  free(sorted);
  sha256_final(&c, digest);
  for (int i = 0; i < 32; i++) snprintf(replay_key + 2 * i, 3, "%02x", digest[i]);
}

struct field {
  const char *name;
  char *value; /* NUL-ended copy */
  size_t size;
};

static struct field fields[REPLAY_FIELDS];
static int field_count;

/* Splits the record into fields; 0 when it is not one. */
static int read_record(const char *path) {
  static char text[REPLAY_MAX], copies[REPLAY_MAX + REPLAY_FIELDS];
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return 0;
  struct stat s;
  if (fstat(fd, &s) != 0 || !S_ISREG(s.st_mode) || s.st_uid != uid || (s.st_mode & 022) || s.st_size <= 0 || s.st_size >= REPLAY_MAX) return close(fd), 0;
  size_t size = 0;
  for (ssize_t got; size < (size_t)s.st_size && (got = read(fd, text + size, (size_t)s.st_size - size)) != 0; size += (size_t)got) {
    if (got < 0) {
      if (errno != EINTR) break;
      got = 0;
    }
  }
  close(fd);
  if (size != (size_t)s.st_size) return 0;
  size_t at = 0, copied = 0;
  field_count = 0;
  while (at < size) {
    if (field_count == REPLAY_FIELDS) return 0;
    struct field *f = &fields[field_count++];
    f->name = text + at;
    char *end = memchr(text + at, 0, size - at);
    if (!end) return 0;
    at = (size_t)(end - text) + 1;
    char *length_end = memchr(text + at, 0, size - at);
    if (!length_end || length_end == text + at) return 0;
    char *stop;
    unsigned long long length = strtoull(text + at, &stop, 10);
    if (stop != length_end) return 0;
    at = (size_t)(length_end - text) + 1;
    if (length > size - at) return 0;
    f->value = copies + copied;
    f->size = (size_t)length;
    memcpy(f->value, text + at, f->size);
    f->value[f->size] = 0;
    copied += f->size + 1;
    at += f->size;
  }
  return 1;
}

/* The n-th NUL-separated part of a field's value (the last part runs to the value's end). */
static const char *part(const struct field *f, int n, size_t *size) {
  const char *at = f->value, *end = f->value + f->size;
  for (int i = 0; i < n; i++) {
    const char *nul = memchr(at, 0, (size_t)(end - at));
    if (!nul) return NULL;
    at = nul + 1;
  }
  if (size) *size = (size_t)(end - at);
  return at;
}

static const char *errno_name(int code) {
  switch (code) {
  case ENOENT: return "-ENOENT";
  case ENOTDIR: return "-ENOTDIR";
  case EACCES: return "-EACCES";
  case EPERM: return "-EPERM";
  case ELOOP: return "-ELOOP";
  case ENAMETOOLONG: return "-ENAMETOOLONG";
  default: return "-unknown"; /* never what the launcher wrote: no replay */
  }
}

/* Whether a dependency is as the launcher found it (lib/track.ts writes the same signature). */
static int unchanged(const struct field *f) {
  const char *kind = part(f, 0, NULL), *path = part(f, 1, NULL);
  size_t size;
  const char *value = part(f, 2, &size);
  if (!kind || !path || !value) return 0;
  char found[PATH_MAX + 64];
  if (!strcmp(kind, "stat") || !strcmp(kind, "lstat")) {
    struct stat s;
    if ((!strcmp(kind, "stat") ? stat(path, &s) : lstat(path, &s)) != 0) snprintf(found, sizeof found, "%s", errno_name(errno));
    else
      snprintf(found, sizeof found, "%llu:%llu:%u:%u:%u:%lld:%llu:%llu", (unsigned long long)s.st_dev, (unsigned long long)s.st_ino, (unsigned)s.st_mode, (unsigned)s.st_uid,
               (unsigned)s.st_gid, (long long)s.st_size, (unsigned long long)s.st_mtim.tv_sec * 1000000000ULL + (unsigned long long)s.st_mtim.tv_nsec,
               (unsigned long long)s.st_ctim.tv_sec * 1000000000ULL + (unsigned long long)s.st_ctim.tv_nsec);
    return strlen(found) == size && !memcmp(found, value, size);
  }
  if (!strcmp(kind, "realpath")) {
    char resolved[PATH_MAX];
    const char *got = realpath(path, resolved) ? resolved : errno_name(errno);
    return strlen(got) == size && !memcmp(got, value, size);
  }
  if (!strcmp(kind, "content")) {
    static char bytes[1 << 16];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      const char *name = errno_name(errno);
      return strlen(name) == size && !memcmp(name, value, size);
    }
    size_t got = 0;
    for (ssize_t n; got < sizeof bytes && (n = read(fd, bytes + got, sizeof bytes - got)) != 0; got += (size_t)n) {
      if (n < 0) {
        if (errno != EINTR) break;
        n = 0;
      }
    }
    close(fd);
    return got == size && !memcmp(bytes, value, size);
  }
  return 0;
}

/* Field 22 of /proc/<pid>/stat: with the PID, it names one process. */
static int start_time_of(const char *pid, char *out, size_t size) {
  char path[64], text[1024];
  snprintf(path, sizeof path, "/proc/%s/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n <= 0) return 0;
  text[n] = 0;
  char *at = strrchr(text, ')');
  if (!at) return 0;
  at += 2;
  for (int i = 0; i < 19 && at; i++) at = strchr(at, ' '), at = at ? at + 1 : NULL;
  if (!at) return 0;
  size_t length = strcspn(at, " ");
  if (length + 1 > size) return 0;
  memcpy(out, at, length);
  out[length] = 0;
  return 1;
}

static int same_file_text(const char *path, const struct field *f) {
  static char text[1 << 16];
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, text, sizeof text);
  close(fd);
  return n >= 0 && (size_t)n == f->size && !memcmp(text, f->value, f->size);
}

/* A value with the marks replaced: this run's instance directory and start time. */
static char *expand(const char *value, size_t size, const char *instance, const char *started, size_t *out_size) {
  size_t room = size + 1, marks = 0;
  for (const char *at = value; (at = memchr(at, '\x01', (size_t)(value + size - at))) != NULL; at++) marks++;
  char pid[24];
  snprintf(pid, sizeof pid, "%d", (int)self_pid);
  room += marks * (strlen(instance) + strlen(started) + strlen(pid));
  char *out = malloc(room), *to = out;
  if (!out) return NULL;
  for (size_t i = 0; i < size;) {
    if (size - i >= 3 && !memcmp(value + i, INSTANCE_MARK, 3)) {
      to = stpcpy(to, instance), i += 3;
    } else if (size - i >= 3 && !memcmp(value + i, STARTED_MARK, 3)) {
      to = stpcpy(to, started), i += 3;
    } else if (size - i >= 3 && !memcmp(value + i, PID_MARK, 3)) {
      to = stpcpy(to, pid), i += 3;
    } else {
      *to++ = value[i++];
    }
  }
  *to = 0;
  if (out_size) *out_size = (size_t)(to - out);
  return out;
}

static int write_all(int fd, const char *bytes, size_t size) {
  for (size_t done = 0; done < size;) {
    ssize_t n = write(fd, bytes + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return 0;
    done += (size_t)n;
  }
  return 1;
}

static void remove_instance(const char *instance) {
  char path[PATH_MAX];
  for (int i = field_count - 1; i >= 0; i--) {
    const struct field *f = &fields[i];
    int dir = !strcmp(f->name, "dir");
    if ((dir || !strcmp(f->name, "file")) && snprintf(path, sizeof path, "%s/%s", instance, f->value) < (int)sizeof path) dir ? rmdir(path) : unlink(path);
  }
  snprintf(path, sizeof path, "%s/.alive", instance);
  unlink(path);
  rmdir(instance);
}

/* The instance directory as the launcher claims it (plugins/instance/registry.ts): made while
 * no sweep decides, its `.alive` locked before it has its name. The descriptor of the lock, or -1. */
static int claim_instance(const char *app, const char *instance) {
  char path[PATH_MAX], fresh[PATH_MAX];
  struct stat s;
  if (lstat(instance, &s) == 0 || errno != ENOENT) return -1; /* an ended run's: the launcher sweeps it */
  if (snprintf(path, sizeof path, "%s/instance/.sweep.lock", app) >= (int)sizeof path) return -1;
  int sweep = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0666), alive = -1;
  if (sweep < 0) return -1;
  while (flock(sweep, LOCK_SH) != 0 && errno == EINTR) {}
  snprintf(path, sizeof path, "%s/.alive", instance);
  snprintf(fresh, sizeof fresh, "%s/.alive.new", instance);
  if (mkdir(instance, 0777) == 0) {
    alive = open(fresh, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (alive >= 0 && (flock(alive, LOCK_SH) != 0 || rename(fresh, path) != 0)) close(alive), alive = -1, unlink(fresh), rmdir(instance);
    if (alive < 0) rmdir(instance);
  }
  close(sweep);
  return alive;
}

static const struct field *named(const char *name) {
  for (int i = 0; i < field_count; i++) {
    if (!strcmp(fields[i].name, name)) return &fields[i];
  }
  return NULL;
}

/* Replays the start's recorded plan when it still holds; returns when it does not (nothing done). */
static void replay(const char *app, int build_lock) {
  if (!replay_key[0] || snprintf(replay_path, sizeof replay_path, "%s/replays/%.16s", app, replay_key) >= (int)sizeof replay_path) {
    replay_path[0] = 0;
    return;
  }
  if (!read_record(replay_path)) return;
  const struct field *version = named("version"), *key = named("key"), *mounts = named("mounts"), *data = named("data"), *pid = named("holder-pid"),
                     *started = named("holder-started"), *record = named("holder-record"), *exec_path = named("exec");
  if (!version || strcmp(version->value, "1") || !key || strcmp(key->value, replay_key) || !mounts || !data || !pid || !started || !record || !exec_path) {
    debug("No replay: the record '%s' is not this start's", replay_path);
    return;
  }
  for (int i = 0; i < field_count; i++) {
    if (!strcmp(fields[i].name, "dependency") && !unchanged(&fields[i])) {
      debug("No replay: '%s' changed since the plan was made", part(&fields[i], 1, NULL));
      return;
    }
  }
  char text[PATH_MAX], holder_started[64];
  if (!start_time_of(pid->value, holder_started, sizeof holder_started) || strcmp(holder_started, started->value)) {
    debug("No replay: the namespace holder %s has ended", pid->value);
    return;
  }
  /* As the launcher joins (holder.ts, beginJoin), but without waiting: busy, it waits. */
  int start = lock_file(mounts->value, "start.lock", LOCK_EX), guests = -1, held = 0;
  if (start >= 0) guests = lock_file(mounts->value, "guests.lock", LOCK_SH);
  if (guests >= 0 && snprintf(text, sizeof text, "%s/.lock", data->value) < (int)sizeof text) {
    int fd = open(text, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    held = fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    if (fd >= 0) close(fd);
  }
  int same = held && snprintf(text, sizeof text, "%s/holder.json", mounts->value) < (int)sizeof text && same_file_text(text, record);
  if (start >= 0) close(start);
  if (!same) {
    debug("No replay: the namespace holder of '%s' is not the one the plan joined, or is busy", data->value);
    if (guests >= 0) close(guests);
    return;
  }

  char instance[PATH_MAX], own[64] = "";
  start_time_of("self", own, sizeof own);
  int alive = snprintf(instance, sizeof instance, "%s/instance/%d", app, (int)self_pid) < (int)sizeof instance ? claim_instance(app, instance) : -1;
  if (alive < 0) {
    debug("No replay: could not claim the instance directory '%s'", instance);
    close(guests);
    return;
  }
  debug("Replaying the plan of an earlier start ('%s'), joining the namespace holder %s", replay_path, pid->value);
  int ok = 1;
  for (int i = 0; i < field_count && ok; i++) {
    const struct field *f = &fields[i];
    char path[PATH_MAX];
    if (!strcmp(f->name, "dir")) {
      ok = snprintf(path, sizeof path, "%s/%s", instance, f->value) < (int)sizeof path && mkdir(path, 0777) == 0;
    } else if (!strcmp(f->name, "file")) {
      size_t size, length;
      const char *mode = part(f, 1, NULL), *how = part(f, 2, NULL), *content = part(f, 3, &size);
      char *bytes = NULL;
      if (content && !strcmp(how, "marked")) bytes = expand(content, size, instance, own, &length);
      else if (content && (bytes = malloc(size + 1)) != NULL) memcpy(bytes, content, size), length = size;
      int fd = bytes && snprintf(path, sizeof path, "%s/%s", instance, f->value) < (int)sizeof path ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600) : -1;
      ok = fd >= 0 && write_all(fd, bytes, length) && fchmod(fd, (mode_t)strtoul(mode, NULL, 8)) == 0;
      if (fd >= 0) close(fd);
      free(bytes);
    }
  }
  if (!ok) {
    debug("No replay: could not write the instance directory '%s': %s", instance, strerror(errno));
    remove_instance(instance);
    close(alive), close(guests);
    return;
  }
  for (int i = 0; i < field_count; i++) {
    const struct field *f = &fields[i];
    size_t size;
    const char *level = part(f, 0, NULL), *tag = part(f, 1, NULL), *message = part(f, 2, &size);
    if (strcmp(f->name, "say") || !level || !tag || !message) continue;
    char *expanded = expand(message, size, instance, own, NULL);
    if (!expanded) continue;
    dprintf(level[0] == 'D' || level[0] == 'I' ? 1 : 2, "%c::%s::%d::%s\n", level[0], tag, (int)self_pid, expanded);
    free(expanded);
  }

  /* As Bun does at its start: the guest gets the same limit either way. */
  struct rlimit files;
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) files.rlim_cur = files.rlim_max, setrlimit(RLIMIT_NOFILE, &files);
  /* The descriptors at the numbers the supervisor's command line names; nothing else open. */
  int wanted[8], held_fds[8], count = 0, highest = 2;
  for (int i = 0; i < field_count; i++) {
    const struct field *f = &fields[i];
    const char *number = part(f, 1, NULL);
    if (strcmp(f->name, "fd") || !number) continue;
    int fd = !strcmp(f->value, "guests") ? guests : !strcmp(f->value, "alive") ? alive : !strcmp(f->value, "build") ? build_lock : -1;
    int at = atoi(number);
    if (fd < 0 || count == 8 || at < 3 || at > 255) fail("The plan of an earlier start names a descriptor it cannot have ('%s' at %s): remove '%s'", f->value, number, replay_path);
    wanted[count] = at;
    held_fds[count++] = fd;
    if (at > highest) highest = at;
  }
  for (int i = 0; i < count; i++) {
    held_fds[i] = fcntl(held_fds[i], F_DUPFD, highest + 1);
    if (held_fds[i] < 0) fail("Could not place the descriptors of an earlier start's plan: %s", strerror(errno));
  }
  for (int i = 0; i < count; i++) {
    if (dup2(held_fds[i], wanted[i]) < 0) fail("Could not place the descriptors of an earlier start's plan: %s", strerror(errno));
  }
  for (int fd = 3; fd <= highest; fd++) {
    int keep = 0;
    for (int i = 0; i < count; i++) keep |= fd == wanted[i];
    if (!keep) close(fd);
  }
  close_from(highest + 1);

  size_t given = 0;
  while (environ[given]) given++;
  char **args = calloc((size_t)field_count + 1, sizeof *args), **env = calloc((size_t)field_count + given + 1, sizeof *env);
  int a = 0, e = 0;
  for (int i = 0; i < field_count && args && env; i++) {
    const struct field *f = &fields[i];
    if (!strcmp(f->name, "arg")) args[a++] = expand(f->value, f->size, instance, own, NULL);
    else if (!strcmp(f->name, "env")) env[e++] = expand(f->value, f->size, instance, own, NULL);
  }
  /* This start's own, as the launcher adds them; a value the run set itself is the record's. */
  for (size_t i = 0; i < given && args && env; i++) {
    if (!passed_name(environ[i])) continue;
    size_t n = (size_t)(strchr(environ[i], '=') - environ[i]) + 1;
    int recorded = 0;
    for (int k = 0; k < e && !recorded; k++) recorded = env[k] && !strncmp(env[k], environ[i], n);
    if (!recorded) env[e++] = environ[i];
  }
  if (args && env && a > 0) execve(exec_path->value, args, env);
  int code = errno;
  remove_instance(instance);
  fail("Could not start the sandbox supervisor '%s': %s", exec_path->value, strerror(code));
}

/* ------------------------------------------------------------------- main */

/* Whether the command argv names declared itself brief, its work in the launcher being a few
 * milliseconds (a run: the guest runs in other processes; the configuration commands): the
 * build lists those in the boot table. */
static int brief_command(const struct table *t, int argc, char **argv) {
  const char *name = command_name(argc, argv);
  for (uint32_t at = 0; at < t->brief_size; at += (uint32_t)strlen(t->brief + at) + 1) {
    if (strcmp(t->brief + at, name) == 0) return 1;
  }
  return 0;
}

/* Engine settings for a brief command, each measured side by side. JavaScriptCore compiles a
 * function with its baseline JIT once it has run a few hundred times: for a launcher that
 * works a few milliseconds that costs more than it saves (8-10 % of `fim-exec true` and
 * `fim-perms list`). Once its heap has grown a little, it starts a thread that makes heap
 * blocks ahead of need: work thrown away by a configuration command (4-7 % of `fim-perms
 * list`; none either way for `fim-exec true`). FIM_BOOT_ENGINE names the variables set here,
 * which the launcher removes from the environment it passes on, so the guest and the helpers
 * that run long (the union filesystem's server) get the engine's defaults. A variable the
 * user set is left alone. */
static void tune_engine(const struct table *t, int argc, char **argv) {
  unsetenv("FIM_BOOT_ENGINE");
  if (!brief_command(t, argc, argv)) return;
  static const char *const settings[][2] = {
      {"BUN_JSC_thresholdForJITAfterWarmUp", "5000"},
      {"BUN_JSC_thresholdForJITSoon", "5000"},
      {"BUN_JSC_useWarmUpMarkedBlocks", "0"},
  };
  char set[256] = "";
  for (size_t i = 0; i < sizeof settings / sizeof *settings; i++) {
    if (getenv(settings[i][0])) continue;
    setenv(settings[i][0], settings[i][1], 1);
    if (set[0]) strcat(set, ",");
    strcat(set, settings[i][0]);
  }
  if (set[0]) {
    setenv("FIM_BOOT_ENGINE", set, 1);
    debug("The engine is tuned for this brief command (%s)", set);
  }
}

static void join(char out[PATH_MAX], const char *dir, const char *name) {
  if (snprintf(out, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX) fail("The path of the runtime directory is too long: '%s'", dir);
}

int main(int argc, char **argv) {
  self_pid = getpid();
  const char *d = getenv("FIM_DEBUG");
  debug_on = d && strcmp(d, "1") == 0;
  uid = getuid();
  gid = getgid();

  static char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) fail("Could not read the path of the image (/proc/self/exe): %s", strerror(errno));
  self[n] = 0;
  image_path = self;
  int image = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (image < 0 || fstat(image, &st) != 0) fail("Could not open the image '%s': %s", self, strerror(errno));
  static struct table t;
  read_table(image, (uint64_t)st.st_size, &t);

  char number[32];
  if (getenv("FIM_MAIN_OFFSET")) {
    int len = snprintf(number, sizeof number, "%llu\n", (unsigned long long)t.reserved);
    return write(1, number, len) == len ? 0 : 125;
  }
  check_cpu(t.cpu_level);
  sha256_pick();
  make_replay_key(&st, argc, argv); /* of the environment as it was given */

  /* Room for what is missing, plus the tools extracted later and a margin; inodes for the
   * parts, the tools and busybox's links in sbin/ (about 300 per build). */
  const uint64_t margin = 24ULL << 20, inodes = t.count + 512;
  uint64_t total = 0;
  for (uint32_t i = 0; i < t.count; i++) total += t.parts[i].size;

  struct root roots[3];
  int count = candidates(roots), chosen = -1, build = -1, lock = -1, extracted = 0;
  for (int i = 0; i < count && chosen < 0; i++) {
    struct root *r = &roots[i];
    open_root(r);
    if (r->fd >= 0) {
      const char *why = NULL;
      build = open_build(r->fd, t.build, &lock, &why);
      if (build < 0) {
        r->why = why;
        snprintf(r->where, sizeof r->where, "%s/%s", r->path, t.build);
        close(r->fd);
        r->fd = -1;
      }
    }
    if (r->fd < 0) {
      debug("Runtime directory '%s' is not usable: '%s' %s", r->path, r->where, r->why);
      continue;
    }
    uint64_t missing = 0;
    for (uint32_t k = 0; k < t.count; k++) missing += part_present(build, &t.parts[k]) ? 0 : t.parts[k].size;
    if (missing == 0) {
      chosen = i;
      break;
    }
    if (free_bytes(r->fd) < missing + margin) {
      snprintf(r->no_room, sizeof r->no_room, "has not enough room (%llu MiB needed)", (unsigned long long)((missing + margin) >> 20));
      r->why = r->no_room;
    } else if (free_inodes(r->fd) < inodes) {
      snprintf(r->no_room, sizeof r->no_room, "has not enough room (%llu free inodes needed)", (unsigned long long)inodes);
      r->why = r->no_room;
    } else if (make_build_dir(build, "bin") == NO_ROOM || make_build_dir(build, t.libdir) == NO_ROOM) {
      r->why = "ran out of room while the runtime was being extracted";
    } else {
      /* Linux drops the shared lock when this upgrade fails (flock(2): conversions are not
       * atomic): it is taken again either way, and the build checked again, as a removal may
       * have come in between. */
      int alone = flock(lock, LOCK_EX | LOCK_NB) == 0;
      if (alone) {
        sweep_temporaries(build, "bin", 1);
        sweep_temporaries(build, t.libdir, 1);
      }
      while (flock(lock, LOCK_SH) != 0 && errno == EINTR) {}
      if (!lock_current(r->fd, t.build, build, lock)) {
        r->why = "is being removed by another process";
        goto unusable;
      }
      if (!alone) {
        sweep_temporaries(build, "bin", 0);
        sweep_temporaries(build, t.libdir, 0);
      }
      int full = 0, sync = !is_tmpfs(build);
      for (uint32_t k = 0; k < t.count && !full; k++) {
        if (!part_present(build, &t.parts[k])) full = extract(image, build, &t, &t.parts[k], sync) == NO_ROOM;
      }
      if (!full) {
        chosen = i;
        extracted = 1;
        break;
      }
      r->why = "ran out of room while the runtime was being extracted";
    }
  unusable:
    snprintf(r->where, sizeof r->where, "%s", r->path);
    debug("Runtime directory '%s' is not usable: '%s' %s", r->path, r->where, r->why);
    close(lock);
    close(build);
    close(r->fd);
    r->fd = build = lock = -1;
  }
  if (chosen < 0) {
    static char text[8192];
    text[0] = 0;
    for (int i = 0; i < count; i++) {
      size_t used = strlen(text);
      snprintf(text + used, sizeof text - used, "%s'%s' %s", i ? "; " : "", roots[i].where[0] ? roots[i].where : roots[i].path,
               roots[i].why ? roots[i].why : "cannot be used");
    }
    fail("No usable runtime directory: %s. Make one of them usable, or set XDG_RUNTIME_DIR to a directory of yours (mode 0700) with %llu MiB free", text,
         (unsigned long long)((total + margin) >> 20));
  }
  struct root *r = &roots[chosen];
  debug("Runtime directory: '%s/%s'%s", r->path, t.build, extracted ? " (extracted now)" : "");
  debug("FIM_OFFSET: %llu", (unsigned long long)t.reserved);

  /* When this build was last used: the sweep keeps the most recent ones. */
  struct stat lock_st;
  if (fstat(lock, &lock_st) == 0 && time(NULL) - lock_st.st_mtime > 60) futimens(lock, NULL);

  static char app[PATH_MAX], loader[PATH_MAX], libdir[PATH_MAX], launcher[PATH_MAX];
  join(app, r->path, t.build);
  join(loader, app, t.loader);
  join(libdir, app, t.libdir);
  join(launcher, app, t.launcher);
  setenv("FIM_BIN_SELF", self, 1);
  snprintf(number, sizeof number, "%llu", (unsigned long long)t.reserved);
  setenv("FIM_OFFSET", number, 1);
  setenv("FIM_DIR_APP", app, 1);
  /* The host's preloads and audit libraries are not for our glibc: set aside, given back to
   * the guest. */
  static const char *const set_aside[][2] = {{"LD_PRELOAD", "FIM_HOST_LD_PRELOAD"}, {"LD_AUDIT", "FIM_HOST_LD_AUDIT"}};
  for (size_t i = 0; i < sizeof set_aside / sizeof *set_aside; i++) {
    unsetenv(set_aside[i][1]);
    const char *value = getenv(set_aside[i][0]);
    if (value) {
      setenv(set_aside[i][1], value, 1);
      unsetenv(set_aside[i][0]);
    }
  }
  /* A start beside a running instance whose plan was made before: no launcher. */
  replay(app, lock);
  /* The holder gets the environment so far: the launcher's hand-over comes after it. */
  head_start(&st, app, argc, argv);
  snprintf(number, sizeof number, "%d", lock);
  setenv("FIM_BOOT_LOCK_FD", number, 1);
  if (replay_path[0]) setenv("FIM_BOOT_REPLAY", replay_path, 1), setenv("FIM_BOOT_REPLAY_KEY", replay_key, 1);
  else unsetenv("FIM_BOOT_REPLAY"), unsetenv("FIM_BOOT_REPLAY_KEY");
  if (extracted) setenv("FIM_BOOT_EXTRACTED", "1", 1);
  else unsetenv("FIM_BOOT_EXTRACTED");
  tune_engine(&t, argc, argv);
  close(image);
  close(build);

  char **args = calloc((size_t)argc + 8, sizeof *args);
  int k = 0;
  args[k++] = loader;
  args[k++] = "--library-path";
  args[k++] = libdir;
  args[k++] = "--argv0";
  args[k++] = argc > 0 ? argv[0] : self;
  args[k++] = launcher;
  for (int i = 1; i < argc; i++) args[k++] = argv[i];
  args[k] = NULL;
  execv(loader, args);
  fail("Could not perform 'evecve(%s)': %s", loader, strerror(errno));
}
#endif
