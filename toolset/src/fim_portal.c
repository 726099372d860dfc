/* fim_portal: the host portal of a run (reference §10), one small program for both sides.
 *
 *   fim_portal --daemon <socket> <status> host side, started with the run: listens on a unix
 *                                        socket (0600, in a private directory) and serves
 *                                        only processes inside the run's pid namespace (the
 *                                        process named by "child-pid" in bwrap's status
 *                                        file <status>), checked with SO_PEERCRED.
 *   fim_portal <program> [args...]       guest side: runs <program> on the host with this
 *                                        process's stdin/stdout/stderr (passed as file
 *                                        descriptors: no copying, no size limit), its
 *                                        environment, and returns its exit status (128+N
 *                                        for a signal). SIGINT/SIGTERM/SIGHUP/SIGQUIT are
 *                                        forwarded. The socket comes from $FIM_PORTAL_SOCKET.
 *
 * Wire format, client to daemon: u32 argc, u32 envc, then the NUL-terminated strings, sent
 * with the three descriptors (SCM_RIGHTS) on the first byte; then one byte per signal to
 * forward. Daemon to client: i32 pid (-1: not found), then i32 status. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

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

/* ---------------------------------------------------------------- daemon */

static ino_t pid_ns_of(pid_t pid) {
  char path[64];
  struct stat st;
  snprintf(path, sizeof path, "/proc/%d/ns/pid", (int)pid);
  return stat(path, &st) == 0 ? st.st_ino : 0;
}

/* A process belongs to the instance when it, or an ancestor, is in the instance's pid
 * namespace (an ancestor: with `fim-unshare pid` the guest has a namespace of its own). */
static int in_instance(pid_t peer, ino_t instance_ns) {
  for (pid_t p = peer, depth = 0; p > 1 && depth < 64; depth++) {
    if (pid_ns_of(p) == instance_ns) return 1;
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)p);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *close_paren = strrchr(buf, ')');
    int ppid = 0;
    if (!close_paren || sscanf(close_paren + 2, "%*c %d", &ppid) != 1) return 0;
    p = ppid;
  }
  return 0;
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
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) < 0) return;
  pid_t child = fork();
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    setpgid(0, 0); /* its own process group: forwarded signals reach its children too */
    for (int i = 0; i < 3; i++) dup2(fds[i], i);
    signal(SIGPIPE, SIG_DFL);
    environ = envp;
    execvp(argv[0], argv);
    int err = errno;
    full_write(ready[1], &err, sizeof err);
    _exit(127);
  }
  close(ready[1]);
  for (int i = 0; i < 3; i++) close(fds[i]);
  int err;
  int32_t reply = child;
  if (child < 0 || read(ready[0], &err, sizeof err) == sizeof err) reply = -1; /* exec failed */
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

static int daemon_main(const char *path, const char *status) {
  prctl(PR_SET_PDEATHSIG, SIGTERM); /* ends with the run's supervisor */
  signal(SIGPIPE, SIG_IGN);
  pid_t guest = wait_child_pid(status);
  if (!guest) die("the sandbox did not start");
  ino_t instance_ns = pid_ns_of(guest);
  if (!instance_ns) die("cannot read the sandbox's pid namespace");
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (s < 0 || strlen(path) >= sizeof addr.sun_path) die("socket");
  strcpy(addr.sun_path, path);
  unlink(path);
  mode_t old = umask(0077);
  if (bind(s, (struct sockaddr *)&addr, sizeof addr) < 0 || chmod(path, 0600) < 0 || listen(s, 64) < 0) die(path);
  umask(old);
  for (;;) {
    int conn = accept4(s, NULL, NULL, SOCK_CLOEXEC);
    if (conn < 0) {
      if (errno == EINTR) continue;
      die("accept");
    }
    pid_t handler = fork();
    if (handler == 0) {
      close(s);
      serve(conn, instance_ns);
      _exit(0);
    }
    close(conn);
    while (waitpid(-1, NULL, WNOHANG) > 0) {}
  }
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
  uint32_t size = (uint32_t)total;
  if (sendmsg(s, &msg, 0) != sizeof counts || full_write(s, &size, sizeof size) < 0 || full_write(s, strings, total) < 0) die("Failure to dispatch process request");
  int32_t pid;
  if (full_read(s, &pid, sizeof pid) < 0) die("Failure to dispatch process request");
  if (pid == -2) {
    fprintf(stderr, "E::fim_portal::%d::The portal refused this process (not in its instance)\n", getpid());
    return 1;
  }
  if (pid < 0) {
    fprintf(stderr, "E::fim_portal::%d::Could not start PID, program not found?\n", getpid());
    fprintf(stderr, "E::fim_portal::%d::Failure to dispatch process request\n", getpid());
    fprintf(stderr, "E::fim_portal::%d::Failure to dispatch process request\n", getpid());
    int32_t code;
    full_read(s, &code, sizeof code);
    return 1;
  }
  const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
  for (unsigned i = 0; i < sizeof forwarded / sizeof *forwarded; i++) {
    struct sigaction sa = {.sa_handler = remember};
    sigaction(forwarded[i], &sa, NULL);
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

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "--daemon") == 0) {
    if (argc != 4) {
      fprintf(stderr, "usage: fim_portal --daemon <socket> <bwrap status file>\n");
      return 1;
    }
    return daemon_main(argv[2], argv[3]);
  }
  if (argc < 2) {
    fprintf(stderr, "E::fim_portal::%d::No arguments for dispatcher\n", getpid());
    return 1;
  }
  return client_main(argc, argv);
}
