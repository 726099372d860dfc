/* fim_portal: the host portal of a run (reference §10), one small program for both sides.
 *
 *   fim_portal --daemon <socket> <status> [options]
 *       host side, started with the run: listens on a unix socket (0600, in a private
 *       directory) and serves only processes inside the run's pid namespace (the process
 *       named by "child-pid" in bwrap's status file <status>), checked with SO_PEERCRED.
 *         --image <path>     the image file, named in a refusal (the command that allows it);
 *                            $FIM_BIN_SELF by default
 *         --path <PATH>      the host's PATH: programs are looked up there, never in the
 *                            guest's (a guest could point its PATH at files it wrote)
 *         --allow <program>  a program guests may run: a name (looked up in the host's PATH)
 *                            or an absolute path; repeatable. Nothing else runs.
 *         --all              every program may run, with the caller's environment (upstream)
 *   fim_portal <program> [args...]
 *       guest side: runs <program> on the host with this process's stdin/stdout/stderr
 *       (passed as file descriptors: no copying, no size limit) and returns its exit status
 *       (128+N for a signal). SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 are forwarded to
 *       its process group. The socket comes from $FIM_PORTAL_SOCKET.
 *
 * Which program runs (without --all). The guest controls the client, so only the daemon
 * decides. A request names a program by a name or a plain absolute path (no `.`, `..` or
 * `//`); both it and each allowed entry are looked up on the host, and it runs when the two
 * give the same path, compared without following symlinks (so `sh`, a link to a multi-call
 * binary that an allowed `ls` also links to, is still refused). The path found is what is
 * executed, with the host's environment (the daemon's, PATH from --path): the caller's
 * variables are not passed, as LD_PRELOAD, PATH or BROWSER would let it choose what runs.
 *
 * Lifetime. The daemon is a child subreaper: whatever a program starts, even a process
 * that leaves its session, stays its descendant. On SIGTERM or SIGHUP (sent by the
 * supervisor, or by PR_SET_PDEATHSIG when the supervisor dies) it sends SIGTERM to every
 * descendant, gives them 400 ms, then SIGKILLs what is left and exits. If the daemon itself
 * is killed with SIGKILL, PR_SET_PDEATHSIG still ends each handler and its program.
 *
 * Wire format, client to daemon: u32 argc, u32 envc, u32 total size, then the NUL-terminated
 * strings, sent with the three descriptors (SCM_RIGHTS) on the first byte; then one byte per
 * signal to forward. Daemon to client: i32 pid (-1: not found; -2: not of this instance;
 * -3: refused, followed by u32 length and the message lines), then i32 status. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define REFUSED_CODE 126

static int full_write(int fd, const void *data, size_t size) {
  const char *p = data;
  while (size > 0) {
    ssize_t n = write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    p += n;
    size -= (size_t)n;
  }
  return 0;
}

static int full_read(int fd, void *data, size_t size) {
  char *p = data;
  while (size > 0) {
    ssize_t n = read(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    p += n;
    size -= (size_t)n;
  }
  return 0;
}

static void die(const char *what) {
  fprintf(stderr, "E::fim_portal::%d::%s: %s\n", getpid(), what, strerror(errno));
  exit(1);
}

/* ---------------------------------------------------------------- policy */

static struct {
  const char *image;
  const char *path;
  int all;
  char **allowed;
  int count;
  char **env; /* the environment of an allowed program */
} policy;

static int printable(const char *p) {
  for (; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f) return 0;
  return 1;
}

/* A name (no slash, not `.`/`..`) or an absolute path without `.`, `..` or empty components. */
static int valid_name(const char *p) {
  if (!*p || !printable(p)) return 0;
  if (!strchr(p, '/')) return strcmp(p, ".") != 0 && strcmp(p, "..") != 0;
  if (p[0] != '/') return 0;
  for (const char *c = p; *c; c++) {
    if (*c != '/') continue;
    const char *n = c + 1;
    if (*n == 0 || *n == '/') return 0;
    if (n[0] == '.' && (n[1] == 0 || n[1] == '/')) return 0;
    if (n[0] == '.' && n[1] == '.' && (n[2] == 0 || n[2] == '/')) return 0;
  }
  return 1;
}

static int executable(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* The host file `name` names: itself when it has a slash, else the first executable match
 * in the host's PATH (relative entries skipped: they would depend on the directory). */
static int resolve(const char *name, char *out, size_t size) {
  if (strchr(name, '/')) {
    if (strlen(name) >= size) return 0;
    strcpy(out, name);
    return executable(out);
  }
  for (const char *dir = policy.path ? policy.path : ""; *dir;) {
    const char *colon = strchrnul(dir, ':');
    size_t len = (size_t)(colon - dir);
    while (len > 0 && dir[len - 1] == '/') len--;
    if (dir[0] == '/' && len + 1 + strlen(name) < size) {
      snprintf(out, size, "%.*s/%s", (int)len, dir, name);
      if (executable(out)) return 1;
    }
    dir = *colon ? colon + 1 : colon;
  }
  return 0;
}

enum verdict { RUN, NOT_FOUND, REFUSED, BAD_NAME };

static enum verdict decide(const char *program, char *resolved, size_t size) {
  if (policy.all) return resolve(program, resolved, size) ? RUN : NOT_FOUND;
  if (!valid_name(program)) return BAD_NAME;
  int found = resolve(program, resolved, size);
  for (int i = 0; i < policy.count; i++) {
    const char *entry = policy.allowed[i];
    if (!found) {
      if (strcmp(entry, program) == 0) return NOT_FOUND; /* allowed, but not on this host */
      continue;
    }
    if (strchr(entry, '/')) {
      if (strcmp(entry, resolved) == 0) return RUN;
      continue;
    }
    char mine[PATH_MAX];
    if (strcmp(entry, strrchr(resolved, '/') + 1) == 0 && resolve(entry, mine, sizeof mine) && strcmp(mine, resolved) == 0) return RUN;
  }
  return REFUSED;
}

/* A word as a shell reads it back: single quotes unless it is plain. */
static void shell_word(char *out, size_t size, const char *word) {
  if (*word && strspn(word, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_@%+=:,./-") == strlen(word)) {
    snprintf(out, size, "%s", word);
    return;
  }
  size_t n = 0;
  if (size < 3) return;
  out[n++] = '\'';
  for (const char *c = word; *c && n + 6 < size; c++) {
    if (*c == '\'') {
      memcpy(out + n, "'\\''", 4);
      n += 4;
    } else {
      out[n++] = *c;
    }
  }
  out[n++] = '\'';
  out[n] = 0;
}

static void refusal(char *out, size_t size, enum verdict verdict, const char *program) {
  if (verdict == BAD_NAME) {
    char shown[256];
    size_t n = 0;
    for (const char *c = program; *c && n + 1 < sizeof shown; c++) shown[n++] = ((unsigned char)*c < 0x20 || *c == 0x7f) ? '?' : *c;
    shown[n] = 0;
    snprintf(out, size,
             "The portal refused to run '%s' on the host: name a host program by its name (looked up in the host's PATH) or by its absolute path",
             shown);
    return;
  }
  char image[PATH_MAX + 64], word[PATH_MAX + 64];
  shell_word(image, sizeof image, policy.image ? policy.image : "<image>");
  shell_word(word, sizeof word, program);
  snprintf(out, size,
           "The portal refused to run '%s' on the host: this image does not allow it\n"
           "To allow it, run on the host: %s fim-portal allow %s",
           program, image, word);
}

/* The host's environment with PATH = the host's PATH, for allowed programs. */
static void build_program_env(void) {
  size_t n = 0;
  while (environ[n]) n++;
  policy.env = calloc(n + 2, sizeof *policy.env);
  if (!policy.env) die("calloc");
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "PATH=", 5) != 0 && strncmp(environ[i], "FIM_PORTAL_SOCKET=", 18) != 0) policy.env[k++] = environ[i];
  if (policy.path) {
    char *path = malloc(strlen(policy.path) + 6);
    if (!path) die("malloc");
    sprintf(path, "PATH=%s", policy.path);
    policy.env[k++] = path;
  }
  policy.env[k] = NULL;
}

/* ---------------------------------------------------------------- daemon */

static ino_t pid_ns_of(pid_t pid) {
  char path[64];
  struct stat st;
  snprintf(path, sizeof path, "/proc/%d/ns/pid", (int)pid);
  return stat(path, &st) == 0 ? st.st_ino : 0;
}

/* Parent pid and state letter from /proc/<pid>/stat; -1 when it is gone. */
static int proc_stat(pid_t pid, int *ppid, char *state) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  char *close_paren = strrchr(buf, ')');
  if (!close_paren || sscanf(close_paren + 2, "%c %d", state, ppid) != 2) return -1;
  return 0;
}

/* A process belongs to the instance when it, or an ancestor, is in the instance's pid
 * namespace (an ancestor: with `fim-unshare pid` the guest has a namespace of its own). */
static int in_instance(pid_t peer, ino_t instance_ns) {
  for (pid_t p = peer, depth = 0; p > 1 && depth < 64; depth++) {
    if (pid_ns_of(p) == instance_ns) return 1;
    int ppid;
    char state;
    if (proc_stat(p, &ppid, &state) < 0) return 0;
    p = ppid;
  }
  return 0;
}

static void reply_refusal(int conn, const char *message) {
  int32_t refused = -3;
  uint32_t length = (uint32_t)strlen(message);
  if (full_write(conn, &refused, sizeof refused) == 0 && full_write(conn, &length, sizeof length) == 0) full_write(conn, message, length);
}

static void serve(int conn, ino_t instance_ns) {
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != getuid() || !in_instance(cred.pid, instance_ns)) {
    int32_t refused = -2;
    full_write(conn, &refused, sizeof refused);
    return;
  }
  uint32_t counts[2];
  int fds[3];
  char control[CMSG_SPACE(sizeof fds)];
  struct iovec iov = {counts, sizeof counts};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
  if (recvmsg(conn, &msg, MSG_WAITALL | MSG_CMSG_CLOEXEC) != sizeof counts) return;
  struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
  if (!cmsg || cmsg->cmsg_type != SCM_RIGHTS || cmsg->cmsg_len != CMSG_LEN(sizeof fds)) return;
  memcpy(fds, CMSG_DATA(cmsg), sizeof fds);
  uint32_t total;
  if (counts[0] == 0 || counts[0] > 65536 || counts[1] > 65536 || full_read(conn, &total, sizeof total) < 0 || total > (64u << 20)) return;
  char *strings = malloc(total);
  char **argv = calloc(counts[0] + 1, sizeof *argv), **envp = calloc(counts[1] + 1, sizeof *envp);
  if (!strings || !argv || !envp || full_read(conn, strings, total) < 0) return;
  char *p = strings, *end = strings + total;
  for (uint32_t i = 0; i < counts[0] + counts[1]; i++) {
    char *nul = memchr(p, 0, (size_t)(end - p));
    if (!nul) return;
    if (i < counts[0]) argv[i] = p; else envp[i - counts[0]] = p;
    p = nul + 1;
  }
  char resolved[PATH_MAX];
  enum verdict verdict = decide(argv[0], resolved, sizeof resolved);
  if (verdict == REFUSED || verdict == BAD_NAME) {
    char message[3 * PATH_MAX + 512];
    refusal(message, sizeof message, verdict, argv[0]);
    reply_refusal(conn, message);
    return;
  }
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) < 0) return;
  pid_t child = verdict == RUN ? fork() : -1;
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    setpgid(0, 0); /* its own process group: forwarded signals reach its children too */
    for (int i = 0; i < 3; i++) dup2(fds[i], i);
    const int reset[] = {SIGPIPE, SIGTERM, SIGHUP, SIGINT, SIGQUIT, SIGCHLD};
    for (unsigned i = 0; i < sizeof reset / sizeof *reset; i++) signal(reset[i], SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(resolved, argv, policy.all ? envp : policy.env);
    int err = errno;
    full_write(ready[1], &err, sizeof err);
    _exit(127);
  }
  close(ready[1]);
  for (int i = 0; i < 3; i++) close(fds[i]);
  int err;
  int32_t reply = child;
  if (child < 0 || read(ready[0], &err, sizeof err) == sizeof err) reply = -1; /* not found, or exec failed */
  full_write(conn, &reply, sizeof reply);
  /* Forward signals the client sends while the program runs; a pidfd wakes us at its end. */
  int status = 0;
  int pidfd = child > 0 ? (int)syscall(SYS_pidfd_open, child, 0) : -1;
  struct pollfd pfd[2] = {{conn, POLLIN, 0}, {pidfd, POLLIN, 0}};
  for (;;) {
    pid_t done = child > 0 ? waitpid(child, &status, WNOHANG) : -1;
    if (done == child || child < 0) break;
    if (poll(pfd, 2, pidfd >= 0 ? -1 : 50) > 0 && (pfd[0].revents & (POLLIN | POLLHUP))) {
      unsigned char sig;
      if (read(conn, &sig, 1) == 1) kill(-child, sig);
      else pfd[0].fd = -1; /* the client went away: let the program finish */
    }
  }
  int32_t code = reply < 0 ? 1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  full_write(conn, &code, sizeof code);
}

/* The pid bwrap writes to its --json-status-fd file, once it is there (up to 10 s). */
static pid_t wait_child_pid(const char *status) {
  for (int i = 0; i < 1000; i++) {
    FILE *f = fopen(status, "r");
    if (f) {
      char buf[512];
      size_t n = fread(buf, 1, sizeof buf - 1, f);
      fclose(f);
      buf[n] = 0;
      char *at = strstr(buf, "\"child-pid\":");
      if (at) return (pid_t)atoi(at + 12);
    }
    usleep(10000);
  }
  return 0;
}

static void reap(void) {
  while (waitpid(-1, NULL, WNOHANG) > 0) {}
}

/* Sends `sig` to every live descendant; returns how many there were. Orphans of our
 * programs are re-parented to us (subreaper), so the tree below us holds them all. */
static int signal_descendants(int sig) {
  static unsigned char *mine;
  static size_t limit;
  if (!mine) {
    limit = 1u << 22; /* the largest pid_max */
    FILE *f = fopen("/proc/sys/kernel/pid_max", "r");
    unsigned long max;
    if (f && fscanf(f, "%lu", &max) == 1 && max > 0 && max <= limit) limit = max + 1;
    if (f) fclose(f);
    mine = malloc(limit);
    if (!mine) return 0;
  }
  size_t capacity = 1024, count = 0;
  struct entry { pid_t pid, ppid; char state; } *all = malloc(capacity * sizeof *all);
  DIR *proc = opendir("/proc");
  if (!all || !proc) {
    free(all);
    if (proc) closedir(proc);
    return 0;
  }
  for (struct dirent *d; (d = readdir(proc));) {
    char *tail;
    long pid = strtol(d->d_name, &tail, 10);
    if (*tail || pid <= 0 || (size_t)pid >= limit) continue;
    int ppid;
    char state;
    if (proc_stat((pid_t)pid, &ppid, &state) < 0) continue;
    if (count == capacity) {
      struct entry *grown = realloc(all, (capacity *= 2) * sizeof *all);
      if (!grown) break;
      all = grown;
    }
    all[count++] = (struct entry){(pid_t)pid, (pid_t)ppid, state};
  }
  closedir(proc);
  memset(mine, 0, limit);
  mine[getpid()] = 1;
  for (int changed = 1, pass = 0; changed && pass < 256; pass++) {
    changed = 0;
    for (size_t i = 0; i < count; i++) {
      if (!mine[all[i].pid] && all[i].ppid > 0 && (size_t)all[i].ppid < limit && mine[all[i].ppid]) {
        mine[all[i].pid] = 1;
        changed = 1;
      }
    }
  }
  int live = 0;
  for (size_t i = 0; i < count; i++) {
    if (all[i].pid == getpid() || !mine[all[i].pid] || all[i].state == 'Z') continue;
    kill(all[i].pid, sig);
    live++;
  }
  free(all);
  return live;
}

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

/* Ends everything the portal started: SIGTERM, up to 400 ms for it to work, then SIGKILL. */
static void end_descendants(int sigfd) {
  reap();
  if (waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD) return; /* no child, so no descendant */
  struct pollfd pfd = {sigfd, POLLIN, 0};
  struct signalfd_siginfo info;
  long long deadline = now_ms() + 400;
  int live = signal_descendants(SIGTERM);
  while (live > 0 && now_ms() < deadline) {
    if (poll(&pfd, 1, 20) > 0) while (read(sigfd, &info, sizeof info) == sizeof info) {}
    reap();
    live = signal_descendants(0);
  }
  for (int round = 0; live > 0 && round < 500; round++) {
    live = signal_descendants(SIGKILL);
    if (poll(&pfd, 1, 10) > 0) while (read(sigfd, &info, sizeof info) == sizeof info) {}
    reap();
  }
  reap();
}

static int daemon_main(const char *path, const char *status) {
  prctl(PR_SET_PDEATHSIG, SIGTERM); /* ends with the run's supervisor */
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  signal(SIGPIPE, SIG_IGN);
  /* A terminal's Ctrl-C reaches the whole foreground group: it is the guest's to handle. */
  signal(SIGINT, SIG_IGN);
  signal(SIGQUIT, SIG_IGN);
  build_program_env();
  pid_t guest = wait_child_pid(status);
  if (!guest) die("the sandbox did not start");
  ino_t instance_ns = pid_ns_of(guest);
  if (!instance_ns) die("cannot read the sandbox's pid namespace");
  sigset_t handled, old_mask;
  sigemptyset(&handled);
  sigaddset(&handled, SIGTERM);
  sigaddset(&handled, SIGHUP);
  sigaddset(&handled, SIGCHLD);
  sigprocmask(SIG_BLOCK, &handled, &old_mask);
  int sigfd = signalfd(-1, &handled, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sigfd < 0) die("signalfd");
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (s < 0 || strlen(path) >= sizeof addr.sun_path) die("socket");
  strcpy(addr.sun_path, path);
  unlink(path);
  mode_t old = umask(0077);
  if (bind(s, (struct sockaddr *)&addr, sizeof addr) < 0 || chmod(path, 0600) < 0 || listen(s, 64) < 0) die(path);
  umask(old);
  pid_t daemon = getpid();
  struct pollfd pfd[2] = {{s, POLLIN, 0}, {sigfd, POLLIN, 0}};
  for (;;) {
    if (poll(pfd, 2, -1) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    if (pfd[1].revents & POLLIN) {
      struct signalfd_siginfo info;
      int stop = 0;
      while (read(sigfd, &info, sizeof info) == sizeof info) stop |= info.ssi_signo != SIGCHLD;
      reap();
      if (stop) break;
    }
    if (!(pfd[0].revents & POLLIN)) continue;
    int conn = accept4(s, NULL, NULL, SOCK_CLOEXEC);
    if (conn < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      die("accept");
    }
    pid_t handler = fork();
    if (handler == 0) {
      /* Ended by the daemon (it signals the programs first), or with it when it is killed. */
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != daemon) _exit(0);
      signal(SIGTERM, SIG_IGN);
      signal(SIGHUP, SIG_IGN);
      sigprocmask(SIG_SETMASK, &old_mask, NULL);
      close(sigfd);
      close(s);
      serve(conn, instance_ns);
      _exit(0);
    }
    close(conn);
  }
  close(s);
  unlink(path);
  end_descendants(sigfd);
  return 0;
}

/* ---------------------------------------------------------------- client */

static volatile sig_atomic_t pending[65];
static void remember(int sig) { pending[sig] = 1; }

static int client_main(int argc, char **argv) {
  const char *path = getenv("FIM_PORTAL_SOCKET");
  if (!path || !*path) {
    fprintf(stderr, "E::fim_portal::%d::No portal in this sandbox (FIM_PORTAL_SOCKET is not set)\n", getpid());
    return 1;
  }
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (s < 0 || strlen(path) >= sizeof addr.sun_path) die("socket");
  strcpy(addr.sun_path, path);
  if (connect(s, (struct sockaddr *)&addr, sizeof addr) < 0) die("Could not reach the portal");
  int envc = 0;
  size_t total = 0;
  for (int i = 1; i < argc; i++) total += strlen(argv[i]) + 1;
  for (char **e = environ; *e; e++, envc++) total += strlen(*e) + 1;
  char *strings = malloc(total), *p = strings;
  for (int i = 1; i < argc; i++) p = stpcpy(p, argv[i]) + 1;
  for (char **e = environ; *e; e++) p = stpcpy(p, *e) + 1;
  uint32_t counts[2] = {(uint32_t)(argc - 1), (uint32_t)envc};
  int fds[3] = {0, 1, 2};
  char control[CMSG_SPACE(sizeof fds)];
  memset(control, 0, sizeof control);
  struct iovec iov = {counts, sizeof counts};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
  struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof fds);
  memcpy(CMSG_DATA(cmsg), fds, sizeof fds);
  /* Remembered from before the request: the program may run (and be signalled) before we
   * know its pid; what arrived meanwhile is forwarded once we do. */
  const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
  for (unsigned i = 0; i < sizeof forwarded / sizeof *forwarded; i++) {
    struct sigaction sa = {.sa_handler = remember};
    sigaction(forwarded[i], &sa, NULL);
  }
  uint32_t size = (uint32_t)total;
  /* A daemon that refuses us answers and closes before it has read the whole request: the
   * rest fails with EPIPE (not SIGPIPE, which would end us unheard), and its answer is read. */
  signal(SIGPIPE, SIG_IGN);
  int sent = sendmsg(s, &msg, 0) == sizeof counts && full_write(s, &size, sizeof size) >= 0 && full_write(s, strings, total) >= 0;
  int32_t pid;
  if (full_read(s, &pid, sizeof pid) < 0) die("Failure to dispatch process request");
  if (pid == -2) {
    fprintf(stderr, "E::fim_portal::%d::The portal refused this process (not in its instance)\n", getpid());
    return 1;
  }
  if (!sent) die("Failure to dispatch process request");
  if (pid == -3) {
    uint32_t length;
    char *message;
    if (full_read(s, &length, sizeof length) < 0 || length > 65536 || !(message = calloc(length + 1, 1)) || full_read(s, message, length) < 0) die("Failure to dispatch process request");
    for (char *line = message, *next; line; line = next) {
      next = strchr(line, '\n');
      if (next) *next++ = 0;
      fprintf(stderr, "E::fim_portal::%d::%s\n", getpid(), line);
    }
    return REFUSED_CODE;
  }
  if (pid < 0) {
    fprintf(stderr, "E::fim_portal::%d::Could not start PID, program not found?\n", getpid());
    fprintf(stderr, "E::fim_portal::%d::Failure to dispatch process request\n", getpid());
    fprintf(stderr, "E::fim_portal::%d::Failure to dispatch process request\n", getpid());
    int32_t code;
    full_read(s, &code, sizeof code);
    return 1;
  }
  int32_t code;
  struct pollfd pfd = {s, POLLIN, 0};
  for (;;) {
    for (int sig = 1; sig < 65; sig++) {
      if (pending[sig]) {
        pending[sig] = 0;
        unsigned char b = (unsigned char)sig;
        full_write(s, &b, 1);
      }
    }
    int r = poll(&pfd, 1, 100);
    if (r > 0) {
      if (full_read(s, &code, sizeof code) < 0) die("Failure to dispatch process request");
      return code;
    }
  }
}

static int daemon_usage(void) {
  fprintf(stderr, "usage: fim_portal --daemon <socket> <bwrap status file> [--image <path>] [--path <PATH>] [--all] [--allow <program>]...\n");
  return 1;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "--daemon") == 0) {
    if (argc < 4) return daemon_usage();
    policy.allowed = calloc((size_t)argc, sizeof *policy.allowed);
    if (!policy.allowed) die("calloc");
    for (int i = 4; i < argc; i++) {
      if (strcmp(argv[i], "--all") == 0) policy.all = 1;
      else if (i + 1 >= argc) return daemon_usage();
      else if (strcmp(argv[i], "--image") == 0) policy.image = argv[++i];
      else if (strcmp(argv[i], "--path") == 0) policy.path = argv[++i];
      else if (strcmp(argv[i], "--allow") == 0) {
        if (valid_name(argv[++i])) policy.allowed[policy.count++] = argv[i];
      } else return daemon_usage();
    }
    if (!policy.path) policy.path = getenv("PATH");
    if (!policy.image) policy.image = getenv("FIM_BIN_SELF");
    return daemon_main(argv[2], argv[3]);
  }
  if (argc < 2) {
    fprintf(stderr, "E::fim_portal::%d::No arguments for dispatcher\n", getpid());
    return 1;
  }
  return client_main(argc, argv);
}
