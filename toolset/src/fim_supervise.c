/* fim_supervise: the supervisor of a run, in the manner of bubblewrap's monitor_child
 * (signals blocked and read from a signalfd, children reaped with waitpid). Its plan is its
 * argv: global options and counted records, so any word (a JSON request, a path with
 * spaces) passes through untouched and nothing is parsed by a shell.
 *
 *   fim_supervise [--log FILE] [--status FILE] [--close FD]... [--open FD FILE]...
 *                 [--expect-parent PID] [--tag TAG] [--hold LOCKFILE] [--notify FD]
 *                 [--linger FD PID] [--status-init] [--end-orphans] [--namespace]
 *                 [--fresh N dir...] [--step N argv...] [--ready N argv...]
 *                 [--mounted N dir...] [--mount 4 type source options target]
 *                 [--companion N argv...] [--after N argv...] [--remove N path...]
 *                 [--child N argv...]
 *   fim_supervise --janitor FD MOUNTPOINT UNMOUNT_ARGV...
 *
 * Fresh directories (--fresh: emptied, or made, e.g. an overlay's work directory), steps,
 * servers (--ready), mounts made here (--mount: mount(2), one process fewer than a mount
 * command) and mount checks run first, in the order given; a failure is
 * reported in FlatImage's line format with the log, and ends the run with 125. Then the
 * companions start, then the child; signals are forwarded to it (or to the pid its bwrap
 * names in the --status file); when it ends the companions' groups are stopped, --hold
 * waits until no one else uses the namespace, the --after commands run and the --remove
 * trees are removed (in the order given), and the child's status is ours (128+N for signal
 * N). Every process started gets the parent-death signal, checks its parent is still us, and
 * gets default signal handling back before exec.
 *
 * --end-orphans: what the child leaves running is adopted (PR_SET_CHILD_SUBREAPER) and
 * killed once the child has ended, so nothing of a guest outlives its run. Its parent's death
 * (the run's supervisor killed: fim_enter dies with it) is then a signal it catches: the
 * child is killed at once and the orphans after it (dying at once itself, it would hand them
 * to the namespace's pid 1, which does not end them).
 * --status-init: the --status file names an init (bwrap --unshare-pid) that forwards nothing:
 * signals go to its first child, the guest.
 * A namespace holder (no --child, --hold) given --notify FD writes "ready" on FD once its
 * steps are done (nothing when one failed, and then it does not wait for guests). A guest's
 * supervisor given --linger FD PID, FD being its shared lock on the holder's lock file, waits
 * (up to 2 s) for the holder PID to end when it was the last guest, so that a normal exit
 * leaves no process behind.
 *
 * --namespace: the supervisor runs as pid 1 of a user, mount and pid namespace of its own,
 * where it is root (the user mapped to uid 0, with every capability there) with its own
 * /proc; mounts made there propagate nowhere. This process stays outside as its monitor, ends
 * with it, and takes it along if it is killed. (The namespace holder's: bwrap made it before,
 * with a new root the holder does not need and one process more.)
 *
 * Janitor mode: waits until FD (a pipe whose writer is a FUSE server) reports end of file,
 * then, when MOUNTPOINT is still mounted, execs UNMOUNT_ARGV. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_RECORDS 512
#define MAX_FDS 64
#define FAILED 125

enum kind { FRESH, STEP, READY, MOUNTED, MOUNT, COMPANION, AFTER, REMOVE, CHILD };
static const char *const KIND_NAME[] = {"--fresh", "--step", "--ready", "--mounted", "--mount", "--companion", "--after", "--remove", "--child"};

struct record {
  enum kind kind;
  int argc;
  char **argv; /* argv[argc] is the next record's option: NULL-terminated only in a forked child */
};

struct opened {
  int fd;           /* where the child sees it */
  const char *path;
  int source;       /* our descriptor, above every target */
};

static struct {
  const char *log, *status, *tag, *hold;
  bool status_init; /* the status names an init whose child the signals are for */
  bool end_orphans;  /* adopt the child's orphans; end them when it ends */
  bool namespace;    /* run as pid 1 of a user, mount and pid namespace of our own */
  int notify;    /* -1: none */
  int linger_fd; /* -1: none */
  pid_t linger_pid;
  bool expect;
  pid_t expect_parent;
  int closes[MAX_FDS], nclose;
  struct opened opens[MAX_FDS];
  int nopen;
  struct record records[MAX_RECORDS];
  int nrecords;
  struct record *child;
  int ncompanions;
} plan;

struct proc {
  pid_t pid;
  int status;
  bool ended;
};

/* Where the run is: signals abort the preparation, are forwarded to the running child, and
 * are dropped afterwards (there is no one left to give them to). */
static enum { PREPARING, RUNNING, ENDING } phase = PREPARING;
static struct proc child, current, companions[MAX_RECORDS];
static int ncompanions;
static pid_t self;
static int sigfd = -1, devnull = -1, logfd = -1, statusfd = -1;
static int fd_floor = 3; /* descriptors handed to children live at or above this */
static bool stdin_tty, alarm_rang;
static int aborted; /* the signal that ended the preparation */
static char errbuf[1 << 16];

static void report(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "C::%s::%d::", plan.tag, (int)self);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  fflush(stderr);
  va_end(ap);
}

static _Noreturn void bad_plan(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("fim_supervise: bad plan: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(FAILED);
}

static int exit_code(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : FAILED;
}

/* A decimal number without sign, 0..max. */
static long number(const char *word, const char *what, long max) {
  char *end;
  if (word[0] < '0' || word[0] > '9') bad_plan("%s takes a number, not '%s'", what, word);
  errno = 0;
  long value = strtol(word, &end, 10);
  if (*end || errno || value > max) bad_plan("%s takes a number up to %ld, not '%s'", what, max, word);
  return value;
}

/* ------------------------------------------------------------------ plan */
static void parse(int n, char **args) {
  plan.notify = -1;
  plan.linger_fd = -1;
  for (int i = 0; i < n;) {
    const char *opt = args[i++];
#define NEED(k) \
  if (n - i < (k)) bad_plan("%s needs %s", opt, (k) == 1 ? "an argument" : "two arguments")
#define ONCE(field) \
  if (field) bad_plan("%s is given twice", opt)
    if (!strcmp(opt, "--log")) {
      NEED(1);
      ONCE(plan.log);
      plan.log = args[i++];
    } else if (!strcmp(opt, "--status")) {
      NEED(1);
      ONCE(plan.status);
      plan.status = args[i++];
    } else if (!strcmp(opt, "--tag")) {
      NEED(1);
      ONCE(plan.tag);
      plan.tag = args[i++];
    } else if (!strcmp(opt, "--status-init")) {
      plan.status_init = true;
    } else if (!strcmp(opt, "--end-orphans")) {
      plan.end_orphans = true;
    } else if (!strcmp(opt, "--namespace")) {
      plan.namespace = true;
    } else if (!strcmp(opt, "--notify")) {
      NEED(1);
      plan.notify = (int)number(args[i++], "--notify", 1 << 20);
      /* No process we start may keep it open (a standard one is redirected by each anyway). */
      if (plan.notify >= 3) {
        if (plan.nclose == MAX_FDS) bad_plan("too many descriptors to close");
        plan.closes[plan.nclose++] = plan.notify;
      }
    } else if (!strcmp(opt, "--linger")) {
      NEED(2);
      plan.linger_fd = (int)number(args[i++], "--linger", 1 << 20);
      plan.linger_pid = (pid_t)number(args[i++], "--linger", INT_MAX);
    } else if (!strcmp(opt, "--hold")) {
      NEED(1);
      ONCE(plan.hold);
      plan.hold = args[i++];
    } else if (!strcmp(opt, "--expect-parent")) {
      NEED(1);
      if (plan.expect) bad_plan("%s is given twice", opt);
      plan.expect = true;
      plan.expect_parent = (pid_t)number(args[i++], opt, INT_MAX);
    } else if (!strcmp(opt, "--close")) {
      NEED(1);
      if (plan.nclose == MAX_FDS) bad_plan("more than %d %s", MAX_FDS, opt);
      int fd = (int)number(args[i++], opt, 1 << 20);
      if (fd < 3) bad_plan("%s %d: the standard descriptors are set for each process", opt, fd);
      plan.closes[plan.nclose++] = fd;
    } else if (!strcmp(opt, "--open")) {
      NEED(2);
      if (plan.nopen == MAX_FDS) bad_plan("more than %d %s", MAX_FDS, opt);
      int fd = (int)number(args[i++], opt, 1 << 20);
      for (int k = 0; k < plan.nopen; k++) {
        if (plan.opens[k].fd == fd) bad_plan("%s %d is given twice", opt, fd);
      }
      plan.opens[plan.nopen++] = (struct opened){.fd = fd, .path = args[i++], .source = -1};
    } else {
      int kind = -1;
      for (int k = 0; k < (int)(sizeof KIND_NAME / sizeof *KIND_NAME); k++) {
        if (!strcmp(opt, KIND_NAME[k])) kind = k;
      }
      if (kind < 0) bad_plan("unknown option '%s'", opt);
      NEED(1);
      const char *count = args[i++];
      long words = number(count, opt, INT_MAX);
      if (words > n - i) bad_plan("%s %s: the count is beyond the end of the plan (%d words follow)", opt, count, n - i);
      if (words == 0 && kind != MOUNTED && kind != REMOVE && kind != FRESH) bad_plan("%s 0: a program is needed", opt);
      if (kind == MOUNT && words != 4) bad_plan("%s %s: it takes 4 words (type, source, options, target)", opt, count);
      if (plan.nrecords == MAX_RECORDS) bad_plan("more than %d records", MAX_RECORDS);
      struct record *r = &plan.records[plan.nrecords++];
      *r = (struct record){.kind = kind, .argc = (int)words, .argv = args + i};
      i += (int)words;
      if (kind == CHILD) {
        if (plan.child) bad_plan("two --child records (one guest per run)");
        plan.child = r;
      }
      if (kind == COMPANION) plan.ncompanions++;
    }
  }
  if (!plan.child && !plan.hold) bad_plan("no --child (and no --hold)");
  if (plan.ncompanions && !plan.child) bad_plan("--companion runs beside a --child, and there is none");
  if (plan.ncompanions && plan.end_orphans) bad_plan("--end-orphans would end the companions too");
  for (int k = 0; k < plan.nopen; k++) {
    if (plan.status && plan.opens[k].fd == 3) bad_plan("--open 3 and --status both want descriptor 3");
  }
  if (!plan.log) plan.log = "/dev/null";
  if (!plan.tag) plan.tag = "sandbox";
  int top = 3;
  for (int k = 0; k < plan.nclose; k++) top = plan.closes[k] > top ? plan.closes[k] : top;
  for (int k = 0; k < plan.nopen; k++) top = plan.opens[k].fd > top ? plan.opens[k].fd : top;
  fd_floor = top + 1;
}

/* Moves a new descriptor above every descriptor a child is given, so that setting up one
 * target cannot overwrite the source of another. */
static int high(int fd) {
  if (fd < 0 || fd >= fd_floor) return fd;
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, fd_floor), error = errno;
  close(fd);
  errno = error;
  return moved;
}

/* ------------------------------------------------------------ processes */
static void default_signals(void) {
  struct sigaction dfl = {.sa_handler = SIG_DFL};
  for (int sig = 1; sig < NSIG; sig++) sigaction(sig, &dfl, NULL); /* KILL, STOP: EINVAL */
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
}

static _Noreturn void exec_or_die(char **argv) {
  execvp(argv[0], argv);
  int error = errno;
  report("Could not run '%s': %s", argv[0], strerror(error));
  _exit(error == ENOENT ? 127 : 126);
}

static bool put(int from, int to) {
  if (from == to) return fcntl(to, F_SETFD, 0) == 0; /* dup2 onto itself keeps FD_CLOEXEC */
  return dup2(from, to) == to;
}

/* In the forked process: the parent-death signal first, then the check that closes the race
 * with a parent that died before it was armed; then descriptors, signals and exec. */
static _Noreturn void become(const struct record *r, int out) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != self) _exit(FAILED);
  if (r->kind == COMPANION) setpgid(0, 0);
  default_signals();
  /* Terminal signals are for the guest, not for a server of its filesystem. */
  if (r->kind == READY) signal(SIGINT, SIG_IGN), signal(SIGQUIT, SIG_IGN);
  for (int k = 0; k < plan.nclose; k++) close(plan.closes[k]);
  bool ok = true;
  switch (r->kind) {
  case STEP: ok = put(devnull, 0) && put(logfd, 1) && put(logfd, 2); break;
  case READY: ok = put(devnull, 0) && put(out, 1) && put(logfd, 2); break;
  case COMPANION:
  case AFTER: ok = put(devnull, 0) && put(devnull, 1) && put(devnull, 2); break;
  case CHILD:
    if (statusfd >= 0) ok = put(statusfd, 3);
    for (int k = 0; ok && k < plan.nopen; k++) ok = put(plan.opens[k].source, plan.opens[k].fd);
    break;
  case FRESH:
  case MOUNTED:
  case MOUNT:
  case REMOVE: break;
  }
  if (!ok) {
    report("Could not set up the descriptors of '%s': %s", r->argv[0], strerror(errno));
    _exit(FAILED);
  }
  r->argv[r->argc] = NULL; /* our own copy of argv: the next record's option word goes */
  exec_or_die(r->argv);
}

static pid_t start(const struct record *r, int out) {
  fflush(stderr); /* nothing buffered may be written twice */
  pid_t pid = fork();
  if (pid < 0) report("Could not start '%s': fork: %s", r->argv[0], strerror(errno));
  if (pid == 0) become(r, out);
  if (pid > 0 && r->kind == COMPANION) setpgid(pid, pid); /* whichever of us comes first */
  return pid;
}

static void note(struct proc *p, pid_t pid, int status) {
  if (p->pid == pid && !p->ended) p->status = status, p->ended = true;
}

/* Every child, ours or an orphan handed to us as pid 1 of a pid namespace. */
static void reap(void) {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    note(&child, pid, status);
    note(&current, pid, status);
    for (int k = 0; k < ncompanions; k++) note(&companions[k], pid, status);
  }
}

/* The first "child-pid": N in the status file: bwrap's guest, which the signal is for. */
static pid_t status_child_pid(void) {
  if (!plan.status) return 0;
  int fd = open(plan.status, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char text[4096];
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n <= 0) return 0;
  text[n] = 0;
  const char *p = strstr(text, "\"child-pid\"");
  if (!p) return 0;
  p += strlen("\"child-pid\"");
  while (*p == ' ' || *p == '\t' || *p == '\n') p++;
  if (*p++ != ':') return 0;
  while (*p == ' ' || *p == '\t' || *p == '\n') p++;
  long pid = 0;
  for (; *p >= '0' && *p <= '9' && pid < INT_MAX / 10; p++) pid = pid * 10 + (*p - '0');
  return (pid_t)pid;
}

/* The first child of a process (bwrap's init has one: the guest), or 0. */
static pid_t first_child(pid_t pid) {
  char path[64], text[64];
  snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n <= 0) return 0;
  text[n] = 0;
  long child_pid = strtol(text, NULL, 10);
  return child_pid > 0 && child_pid < INT_MAX ? (pid_t)child_pid : 0;
}

/* The parent-death signal of a supervisor that ends orphans (SIGRTMIN is not a constant). */
static int parent_gone_signal(void) { return SIGRTMIN + 2; }

static void on_signal(int sig) {
  if (sig == SIGCHLD) return reap();
  if (plan.end_orphans && sig == parent_gone_signal()) {
    if (phase == PREPARING && !aborted) aborted = SIGKILL;
    else if (phase == RUNNING && !child.ended) kill(child.pid, SIGKILL);
    return;
  }
  if (sig == SIGALRM) {
    alarm_rang = true;
    return;
  }
  /* From a terminal they reach the whole foreground process group, the guest included. */
  if ((sig == SIGINT || sig == SIGQUIT) && stdin_tty) return;
  if (phase == PREPARING) {
    if (!aborted) aborted = sig;
  } else if (phase == RUNNING && !child.ended) {
    pid_t target = status_child_pid();
    /* bwrap --unshare-pid names its init, which passes nothing on: the guest is its child. */
    if (target > 0 && plan.status_init) target = first_child(target);
    kill(target > 0 ? target : child.pid, sig);
  }
}

/* Sleeps until a signal or until `fd` (if not -1) is ready; returns fd's poll events. */
static short wait_event(int fd) {
  struct pollfd p[2] = {{.fd = sigfd, .events = POLLIN}, {.fd = fd, .events = POLLIN}};
  if (poll(p, fd >= 0 ? 2 : 1, -1) < 0) {
    if (errno == EINTR) return 0;
    report("Could not wait for events: poll: %s", strerror(errno));
    exit(FAILED);
  }
  if (p[0].revents & POLLIN) {
    struct signalfd_siginfo info[16];
    ssize_t n = read(sigfd, info, sizeof info);
    for (ssize_t k = 0; k < n / (ssize_t)sizeof *info; k++) on_signal((int)info[k].ssi_signo);
  }
  return fd >= 0 ? p[1].revents : 0;
}

/* SIGALRM comes through the signalfd like the others: one timer for every grace period. */
static void arm(unsigned seconds) {
  alarm_rang = false;
  alarm(seconds);
}

static void disarm(void) {
  alarm(0);
  sigset_t alrm;
  sigemptyset(&alrm);
  sigaddset(&alrm, SIGALRM);
  struct timespec now = {0, 0};
  while (sigtimedwait(&alrm, NULL, &now) == SIGALRM) {} /* one that rang meanwhile */
  alarm_rang = false;
}

static void wait_current(void) {
  while (!current.ended) wait_event(-1);
}

/* -------------------------------------------------------------- reports */
/* The log, as `$(<log)` gives it: trailing newlines dropped. */
static void copy_log(void) {
  int fd = open(plan.log, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  char buf[8192];
  ssize_t n;
  size_t newlines = 0;
  while ((n = read(fd, buf, sizeof buf)) > 0) {
    size_t end = (size_t)n;
    while (end > 0 && buf[end - 1] == '\n') end--;
    if (end > 0) {
      for (; newlines; newlines--) fputc('\n', stderr);
      fwrite(buf, 1, end, stderr);
    }
    newlines += (size_t)n - end;
  }
  close(fd);
}

static void report_with_log(const char *what, const struct record *r, const char *detail) {
  fprintf(stderr, "C::%s::%d::Could not prepare the sandbox: ", plan.tag, (int)self);
  if (r) {
    fputc('\'', stderr);
    for (int k = 0; k < r->argc; k++) fprintf(stderr, "%s%s", k ? " " : "", r->argv[k]);
    fputc('\'', stderr);
  }
  fprintf(stderr, "%s%s:\n", what, detail);
  copy_log();
  fputc('\n', stderr);
  fflush(stderr);
}

static void report_failed(const struct record *r, int status) {
  char detail[64];
  if (WIFSIGNALED(status)) snprintf(detail, sizeof detail, " failed (signal %d); its output", WTERMSIG(status));
  else snprintf(detail, sizeof detail, " failed (exit status %d); its output", WEXITSTATUS(status));
  report_with_log("", r, detail);
}

/* ---------------------------------------------------------- preparation */
enum outcome { DONE, FAIL, ABORT };

static enum outcome run_step(const struct record *r) {
  current = (struct proc){.pid = start(r, -1)};
  if (current.pid < 0) return FAIL;
  while (!current.ended) {
    if (aborted) kill(current.pid, SIGKILL);
    wait_event(-1);
  }
  if (aborted) return ABORT;
  if (current.status == 0) return DONE;
  report_failed(r, current.status);
  return FAIL;
}

struct scan {
  char line[8];
  size_t len;
  bool longer, ready;
};

/* Reads what the server wrote so far, looking for the line "ready"; true at end of file. */
static bool drain(int fd, struct scan *s) {
  char buf[256];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0) return true;
    if (n < 0) return errno != EAGAIN && errno != EINTR;
    for (ssize_t k = 0; k < n; k++) {
      if (buf[k] == '\n') {
        if (!s->longer && s->len == 5 && !memcmp(s->line, "ready", 5)) s->ready = true;
        s->len = 0, s->longer = false;
      } else if (s->len < sizeof s->line) s->line[s->len++] = buf[k];
      else s->longer = true;
    }
  }
}

/* A server started in the background: ready once it says so on stdout. If it closes its
 * stdout without saying so and does not exit within a second, it is killed. */
static enum outcome run_ready(const struct record *r) {
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) < 0 || (pipefd[0] = high(pipefd[0])) < 0 || (pipefd[1] = high(pipefd[1])) < 0) {
    report("Could not start '%s': pipe: %s", r->argv[0], strerror(errno));
    return FAIL;
  }
  current = (struct proc){.pid = start(r, pipefd[1])};
  close(pipefd[1]);
  if (current.pid < 0) return close(pipefd[0]), FAIL;
  fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
  struct scan scan = {.len = 0};
  bool eof = false, armed = false;
  enum outcome outcome;
  for (;;) {
    bool ended = current.ended; /* what it wrote before it ended is in the pipe by now */
    if (!eof) eof = drain(pipefd[0], &scan);
    if (scan.ready) {
      outcome = DONE;
      break;
    }
    if (ended) {
      if (aborted) outcome = ABORT;
      else report_failed(r, current.status), outcome = FAIL;
      break;
    }
    if (aborted || alarm_rang) kill(current.pid, SIGKILL);
    if (eof && !armed) arm(1), armed = true;
    wait_event(eof ? -1 : pipefd[0]);
  }
  if (armed) disarm();
  close(pipefd[0]); /* it writes only "ready": nothing more to read */
  return outcome;
}

/* Mount points of our mount namespace: field 5 of mountinfo, with the kernel's octal
 * escapes (\040 for a space, ...) decoded; compared byte for byte, trailing '/' aside. */
static bool is_mounted(const char *dir, bool *unreadable) {
  size_t want = strlen(dir);
  while (want > 1 && dir[want - 1] == '/') want--;
  int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return *unreadable = true, false;
  char buf[8192];
  ssize_t n;
  int field = 0, escape = -1, value = 0;
  size_t pos = 0;
  bool same = true, found = false;
  while (!found && (n = read(fd, buf, sizeof buf)) > 0) {
    for (ssize_t k = 0; k < n && !found; k++) {
      char c = buf[k];
      if (c == '\n') {
        field = 0, pos = 0, same = true, escape = -1;
        continue;
      }
      if (field != 4) {
        if (c == ' ') field++;
        continue;
      }
      if (c == ' ') {
        found = same && pos == want;
        field++;
        continue;
      }
      if (escape >= 0) {
        value = value * 8 + (c - '0');
        if (++escape < 3) continue;
        c = (char)value, escape = -1;
      } else if (c == '\\') {
        escape = 0, value = 0;
        continue;
      }
      same = same && pos < want && dir[pos] == c;
      pos++;
    }
  }
  close(fd);
  return found;
}

static enum outcome check_mounted(const struct record *r) {
  for (int k = 0; k < r->argc; k++) {
    bool unreadable = false;
    if (is_mounted(r->argv[k], &unreadable)) continue;
    char what[PATH_MAX + 64];
    if (unreadable) snprintf(what, sizeof what, "cannot read /proc/self/mountinfo to check %s", r->argv[k]);
    else snprintf(what, sizeof what, "nothing is mounted on %s", r->argv[k]);
    report_with_log(what, NULL, "; the steps' output");
    return FAIL;
  }
  return DONE;
}

static enum outcome make_mount(const struct record *r) {
  const char *type = r->argv[0], *source = r->argv[1], *options = r->argv[2], *target = r->argv[3];
  if (mount(source, target, type, 0, options[0] ? options : NULL) == 0) return DONE;
  char what[PATH_MAX + 128];
  snprintf(what, sizeof what, "mounting %s on %s failed: %s", type, target, strerror(errno));
  report_with_log(what, NULL, "; the steps' output");
  return FAIL;
}

/* ----------------------------------------------------------------- ends */
/* A companion's group; the companion alone if it left its group (no group has its pid). */
static void signal_companion(const struct proc *c, int sig) {
  if (kill(-c->pid, sig) < 0 && !c->ended) kill(c->pid, sig);
}

/* The last guest of a shared namespace waits (a little) for its holder to end, so that a
 * normal exit leaves no process and no mount: FD is our shared lock on the holder's guest
 * lock; converting it to exclusive succeeds only when no other guest holds one. Released as
 * soon as the child has ended, so that the holder's end overlaps our own clean-up. */
static bool last_guest;
static int holder_pidfd = -1;
static void release_guest_lock(void) {
  if (plan.linger_fd < 0) return;
  last_guest = flock(plan.linger_fd, LOCK_EX | LOCK_NB) == 0;
  /* Opened while the holder cannot end (we hold its lock): its PID names it still. A pidfd is
   * readable once the process has ended: no polling where there is one (5.3). */
  if (last_guest) holder_pidfd = (int)syscall(SYS_pidfd_open, plan.linger_pid, 0);
  close(plan.linger_fd);
  plan.linger_fd = -1;
}

static void linger(void) {
  if (!last_guest) return;
  int pidfd = holder_pidfd;
  if (pidfd >= 0) {
    struct pollfd p = {.fd = pidfd, .events = POLLIN};
    while (poll(&p, 1, 2000) < 0 && errno == EINTR) {}
    close(pidfd);
    return;
  }
  for (int waited = 0; waited < 2000 && kill(plan.linger_pid, 0) == 0; waited += 2) {
    char path[64], state = 0;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)plan.linger_pid);
    FILE *stat = fopen(path, "r");
    /* A zombie has ended: its mounts are gone with its namespace. */
    if (stat) {
      if (fscanf(stat, "%*d (%*[^)]) %c", &state) != 1) state = 0;
      fclose(stat);
    }
    if (state == 'Z' || state == 'X') return;
    struct timespec pause = {0, 2000000};
    nanosleep(&pause, NULL);
  }
}

/* Kills what the child left behind: every process we adopted (companions aside), until none
 * is left (a dying parent may hand us its own children). */
static void end_orphans(void) {
  if (!plan.end_orphans) return;
  for (int round = 0; round < 100; round++) {
    char path[64], text[4096];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)self, (int)self);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0) return;
    text[n] = 0;
    int killed = 0;
    for (char *word = strtok(text, " \n"); word; word = strtok(NULL, " \n")) {
      pid_t pid = (pid_t)strtol(word, NULL, 10);
      bool companion = false;
      for (int k = 0; k < ncompanions; k++) companion = companion || companions[k].pid == pid;
      if (pid > 0 && !companion && kill(pid, SIGKILL) == 0) killed++;
    }
    if (!killed) return;
    int status;
    while (waitpid(-1, &status, 0) > 0 || errno == EINTR) {
    }
  }
}

/* SIGTERM to each companion's process group, SIGKILL a second later to what is left. */
static void stop_companions(void) {
  if (!ncompanions) return;
  for (int k = 0; k < ncompanions; k++) signal_companion(&companions[k], SIGTERM);
  arm(1);
  for (;;) {
    bool left = false;
    for (int k = 0; k < ncompanions; k++) left |= !companions[k].ended || kill(-companions[k].pid, 0) == 0;
    if (!left) break;
    if (alarm_rang) {
      for (int k = 0; k < ncompanions; k++) signal_companion(&companions[k], SIGKILL);
      for (int k = 0; k < ncompanions; k++) {
        while (!companions[k].ended) wait_event(-1);
      }
      break;
    }
    wait_event(-1);
  }
  disarm();
}

/* Waits for an exclusive lock while still reaping: a forked helper blocks in flock(2) on our
 * open file description, so the lock it gets is ours and stays when the helper exits. */
static void hold(void) {
  int fd = high(open(plan.hold, O_RDONLY | O_CREAT | O_CLOEXEC, 0644));
  if (fd < 0) {
    report("Could not open the lock file '%s': %s", plan.hold, strerror(errno));
    return;
  }
  fflush(stderr);
  current = (struct proc){.pid = fork()};
  if (current.pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != self) _exit(FAILED);
    _exit(flock(fd, LOCK_EX) == 0 ? 0 : errno);
  }
  if (current.pid < 0) {
    report("Could not lock '%s': fork: %s", plan.hold, strerror(errno));
    return;
  }
  wait_current();
  if (!WIFEXITED(current.status) || WEXITSTATUS(current.status) != 0) {
    report("Could not lock '%s': %s", plan.hold, WIFEXITED(current.status) ? strerror(WEXITSTATUS(current.status)) : "the helper was killed");
  }
  /* fd stays open: the lock is held until we exit */
}

/* Removes the tree at NAME (relative to DIRFD) without following a symbolic link, making
 * each directory readable and writable by us first (the kernel's overlay leaves its
 * work/work with mode 000). Returns false, with errno, at the first entry left behind. */
static bool remove_tree(int dirfd, const char *name, int depth) {
  struct stat st;
  if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) return errno == ENOENT;
  if (!S_ISDIR(st.st_mode)) return unlinkat(dirfd, name, 0) == 0 || errno == ENOENT;
  if (depth > 256) return errno = ELOOP, false;
  if ((st.st_mode & 0700) != 0700 && fchmodat(dirfd, name, (st.st_mode & 07777) | 0700, 0) < 0) return false;
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  DIR *dir = fdopendir(fd);
  if (!dir) {
    close(fd);
    return false;
  }
  bool ok = true;
  for (struct dirent *entry; ok && (entry = readdir(dir));) {
    if (strcmp(entry->d_name, ".") && strcmp(entry->d_name, "..")) ok = remove_tree(fd, entry->d_name, depth + 1);
  }
  int error = errno;
  closedir(dir);
  if (!ok) return errno = error, false;
  return unlinkat(dirfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT;
}

/* A --remove record: each path's tree, in place (no process to start at the end of a run). */
static void remove_trees(const struct record *r) {
  for (int k = 0; k < r->argc; k++) {
    if (!remove_tree(AT_FDCWD, r->argv[k], 0)) report("Could not remove '%s': %s", r->argv[k], strerror(errno));
  }
}

/* Makes DIR and the directories on the way to it (0755), as mkdir -p. */
static bool make_dirs(char *dir) {
  for (char *slash = strchr(dir + 1, '/');; slash = strchr(slash + 1, '/')) {
    if (slash) *slash = 0;
    bool ok = mkdir(dir, 0755) == 0 || errno == EEXIST;
    if (slash) *slash = '/';
    if (!ok) return false;
    if (!slash) return true;
  }
}

/* A --fresh record: each directory emptied (its tree removed, then made again). */
static enum outcome make_fresh(const struct record *r) {
  for (int k = 0; k < r->argc; k++) {
    if (remove_tree(AT_FDCWD, r->argv[k], 0) && make_dirs(r->argv[k])) continue;
    report("Could not prepare the sandbox: could not empty '%s': %s", r->argv[k], strerror(errno));
    return FAIL;
  }
  return DONE;
}

static void run_afters(void) {
  for (int k = 0; k < plan.nrecords; k++) {
    if (plan.records[k].kind == REMOVE) remove_trees(&plan.records[k]);
    if (plan.records[k].kind != AFTER) continue;
    current = (struct proc){.pid = start(&plan.records[k], -1)};
    if (current.pid > 0) wait_current();
  }
}

/* Files for the child only, opened just before it starts (a step may have made them). */
static bool open_child_files(void) {
  if (plan.status && (statusfd = high(open(plan.status, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644))) < 0) {
    report("Could not open the status file '%s': %s", plan.status, strerror(errno));
    return false;
  }
  for (int k = 0; k < plan.nopen; k++) {
    struct opened *o = &plan.opens[k];
    if ((o->source = high(open(o->path, O_RDONLY | O_CLOEXEC))) < 0) {
      report("Could not open '%s' for descriptor %d: %s", o->path, o->fd, strerror(errno));
      return false;
    }
  }
  return true;
}

static void close_child_files(void) {
  if (statusfd >= 0) close(statusfd), statusfd = -1;
  for (int k = 0; k < plan.nopen; k++) {
    if (plan.opens[k].source >= 0) close(plan.opens[k].source), plan.opens[k].source = -1;
  }
}

/* -------------------------------------------------------------- janitor */
static int janitor(int n, char **args) {
  plan.tag = "fuse";
  self = getpid();
  if (n < 3) bad_plan("--janitor needs FD MOUNTPOINT UNMOUNT_ARGV...");
  int fd = (int)number(args[0], "--janitor", 1 << 20);
  const char *mountpoint = args[1];
  if (fcntl(fd, F_GETFD) < 0) bad_plan("--janitor %d: descriptor %d is not open", fd, fd);
  /* Its own session: a signal to the server's process group or terminal does not reach it. */
  setsid();
  signal(SIGHUP, SIG_IGN), signal(SIGINT, SIG_IGN), signal(SIGQUIT, SIG_IGN), signal(SIGPIPE, SIG_IGN);
  struct pollfd p = {.fd = fd, .events = POLLIN};
  char buf[512];
  for (;;) {
    if (poll(&p, 1, -1) < 0) {
      if (errno == EINTR) continue;
      report("Could not wait on descriptor %d: poll: %s", fd, strerror(errno));
      break;
    }
    ssize_t got = read(fd, buf, sizeof buf);
    if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) break;
  }
  close(fd);
  if (fd <= 2) open("/dev/null", O_RDWR); /* takes fd's place */
  bool unreadable = false;
  if (!is_mounted(mountpoint, &unreadable) && !unreadable) return 0; /* unmounted already */
  default_signals();
  exec_or_die(args + 2);
}

/* ----------------------------------------------------------------- main */
/* ------------------------------------------------------------ namespace */
static bool write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
  close(fd);
  return ok;
}

/* Returns in the namespace's pid 1; the monitor outside never returns. */
static void enter_namespace(void) {
  uid_t uid = getuid();
  gid_t gid = getgid();
  char map[64];
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID) != 0) {
    report("Could not make the namespace of the mounts: unshare: %s", strerror(errno));
    _exit(FAILED);
  }
  snprintf(map, sizeof map, "0 %u 1\n", (unsigned)uid);
  bool mapped = write_file("/proc/self/uid_map", map) && write_file("/proc/self/setgroups", "deny\n");
  snprintf(map, sizeof map, "0 %u 1\n", (unsigned)gid);
  if (!mapped || !write_file("/proc/self/gid_map", map)) {
    report("Could not map the user into the namespace of the mounts: %s", strerror(errno));
    _exit(FAILED);
  }
  /* Host mounts still reach us (a disk plugged in later); ours reach nobody. */
  if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) != 0) {
    report("Could not make the mounts of the namespace its own: %s", strerror(errno));
    _exit(FAILED);
  }
  /* The monitor holds `alive[1]` for as long as it lives. In the new pid namespace pid 1's
   * getppid() is 0, so whether the monitor died before the parent-death signal was set is
   * asked of the pipe: no writer left means it did. */
  int alive[2];
  if (pipe2(alive, O_CLOEXEC) != 0) {
    report("Could not start the namespace of the mounts: pipe: %s", strerror(errno));
    _exit(FAILED);
  }
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    report("Could not start the namespace of the mounts: fork: %s", strerror(errno));
    _exit(FAILED);
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(alive[1]);
    struct pollfd monitor = {.fd = alive[0], .events = POLLIN};
    if (poll(&monitor, 1, 0) != 0) _exit(FAILED); /* POLLHUP: it is gone */
    close(alive[0]);
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) {
      report("Could not mount /proc in the namespace of the mounts: %s", strerror(errno));
      _exit(FAILED);
    }
    return;
  }
  /* The monitor: what the namespace's pid 1 ends with, we end with (no descriptor of its is
   * needed here: the lock it holds is its own copy). */
  for (int fd = 3; fd < 1024; fd++) {
    if (fd != alive[1]) close(fd);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) _exit(FAILED);
  }
  _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--janitor")) return janitor(argc - 2, argv + 2);
  parse(argc - 1, argv + 1);
  self = getpid();
  if (plan.namespace) enter_namespace();
  self = getpid();
  if (plan.end_orphans) prctl(PR_SET_CHILD_SUBREAPER, 1);
  if (plan.expect) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != plan.expect_parent) {
      report("The process that started the supervisor (pid %d) has ended", (int)plan.expect_parent);
      return FAILED;
    }
  }
  for (int fd = 0; fd < 3; fd++) {
    if (fcntl(fd, F_GETFD) < 0) open("/dev/null", O_RDWR); /* a closed standard descriptor */
  }
  setvbuf(stderr, errbuf, _IOFBF, sizeof errbuf); /* a report leaves in one write */
  stdin_tty = isatty(0);

  /* Blocked signals still reach the signalfd, but an ignored one would be discarded and an
   * ignored SIGCHLD would reap children behind our back. */
  const int handled[] = {SIGCHLD, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGINT, SIGQUIT, SIGALRM};
  sigset_t mask;
  sigemptyset(&mask);
  for (size_t k = 0; k < sizeof handled / sizeof *handled; k++) {
    signal(handled[k], SIG_DFL);
    sigaddset(&mask, handled[k]);
  }
  if (plan.end_orphans) sigaddset(&mask, parent_gone_signal());
  sigprocmask(SIG_BLOCK, &mask, NULL);
  if (plan.end_orphans) {
    /* Until here the parent-death signal fim_enter armed (SIGKILL) holds: nothing was started. */
    pid_t parent = getppid();
    prctl(PR_SET_PDEATHSIG, parent_gone_signal());
    if (getppid() != parent) return FAILED;
  }
  signal(SIGPIPE, SIG_IGN);
  if ((sigfd = signalfd(-1, &mask, SFD_CLOEXEC)) < 0) {
    report("Could not read signals: signalfd: %s", strerror(errno));
    return FAILED;
  }
  if ((devnull = high(open("/dev/null", O_RDWR | O_CLOEXEC))) < 0) {
    report("Could not open '/dev/null': %s", strerror(errno));
    return FAILED;
  }
  if ((logfd = high(open(plan.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644))) < 0) {
    report("Could not open the log '%s': %s", plan.log, strerror(errno));
    return FAILED;
  }

  int code = 0;
  enum outcome outcome = DONE;
  for (int k = 0; k < plan.nrecords && outcome == DONE; k++) {
    const struct record *r = &plan.records[k];
    if (aborted) outcome = ABORT;
    else if (r->kind == STEP) outcome = run_step(r);
    else if (r->kind == READY) outcome = run_ready(r);
    else if (r->kind == MOUNTED) outcome = check_mounted(r);
    else if (r->kind == MOUNT) outcome = make_mount(r);
    else if (r->kind == FRESH) outcome = make_fresh(r);
  }
  if (outcome == DONE && aborted) outcome = ABORT;
  /* A namespace holder says when its mounts are ready; end of file without it: they are not. */
  if (plan.notify >= 0) {
    if (outcome == DONE && write(plan.notify, "ready\n", 6) != 6) outcome = FAIL;
    close(plan.notify);
    if (plan.notify < 3) open("/dev/null", O_RDWR); /* a standard descriptor stays open */
  }
  if (outcome == DONE && plan.child) {
    if (!open_child_files()) outcome = FAIL;
  }
  if (outcome == DONE && plan.child) {
    phase = RUNNING; /* from here a signal is for the guest */
    for (int k = 0; k < plan.nrecords; k++) {
      if (plan.records[k].kind != COMPANION) continue;
      pid_t pid = start(&plan.records[k], -1);
      if (pid > 0) companions[ncompanions++] = (struct proc){.pid = pid};
    }
    child = (struct proc){.pid = start(plan.child, -1)};
    close_child_files();
    if (child.pid < 0) code = FAILED;
    else {
      while (!child.ended) wait_event(-1);
      code = exit_code(child.status);
    }
  }
  close_child_files();
  phase = ENDING;
  if (outcome == FAIL) code = FAILED;
  if (outcome == ABORT) code = 128 + aborted;
  end_orphans();
  release_guest_lock();
  stop_companions();
  /* A holder whose mounts failed has no one to wait for: the run that started it is told. */
  if (plan.hold && (plan.child || outcome == DONE)) hold();
  run_afters();
  /* After our own clean-up, which overlapped the holder's end. */
  linger();
  return code;
}
