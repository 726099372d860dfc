/* fim_enter <pid> <program> [args...]: runs a program inside the namespaces, root and
 * working directory of a running guest (fim-instance exec), as the caller's own user mapped
 * into them.
 * fim_enter --join <pid> <program> [args...]: runs a program in the user, pid and mount
 * namespaces of a data directory's namespace holder (its pid 1), keeping the caller's root
 * and working directory (the holder sees the host's / at /): a run that joins the mounts of
 * a running instance. Signals are forwarded to the program, which dies with us. bubblewrap nests user namespaces (the pid and mount namespaces belong to an
 * outer one), so the owner of the guest's pid namespace is entered first, then the pid,
 * mount, ipc, uts, net and cgroup namespaces that differ from ours, then the guest's own
 * user namespace. The program's exit status is returned (128+N for a signal). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NS_GET_USERNS _IO(0xb7, 0x1)

static int open_ns(const char *pid, const char *name) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%s/%s", pid, name);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) fprintf(stderr, "fim_enter: %s: %s\n", path, strerror(errno));
  return fd;
}

/* Compared before anything is entered: once in the guest's mounts, /proc is the guest's. */
static int same_ns(int fd, const char *name) {
  char path[64];
  struct stat a, b;
  snprintf(path, sizeof path, "/proc/self/ns/%s", name);
  return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

static int enter(int fd, int type, const char *what) {
  if (setns(fd, type) == 0) return 0;
  fprintf(stderr, "fim_enter: cannot enter the guest's %s namespace: %s\n", what, strerror(errno));
  return -1;
}

static pid_t child = -1;

static void forward(int signal) {
  if (child > 0) kill(child, signal);
}

static int wait_child(void) {
  int status;
  while (waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) return 125;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void exec_program(char **argv) {
  execvp(argv[0], argv);
  fprintf(stderr, "%s: %s\n", argv[0], strerror(errno));
  _exit(errno == ENOENT ? 127 : 126);
}

static int join(const char *pid, char **argv) {
  char cwd[4096];
  int has_cwd = getcwd(cwd, sizeof cwd) != NULL;
  int user = open_ns(pid, "ns/user"), pidns = open_ns(pid, "ns/pid"), mnt = open_ns(pid, "ns/mnt");
  if (user < 0 || pidns < 0 || mnt < 0) return 125;
  if ((!same_ns(user, "user") && enter(user, CLONE_NEWUSER, "holder's user") < 0) || enter(pidns, CLONE_NEWPID, "holder's pid") < 0 ||
      enter(mnt, CLONE_NEWNS, "holder's mount") < 0)
    return 125;
  if (!has_cwd || chdir(cwd) < 0) {
    if (chdir("/") < 0) return 125;
  }
  /* Blocked until the handlers are in place: a signal in between is not lost. */
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  child = fork(); /* a new process is needed to be in the pid namespace */
  if (child < 0) return 125;
  if (child == 0) {
    sigprocmask(SIG_SETMASK, &old, NULL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* Our parent is outside the pid namespace (getppid is 0): 1 means it already died. */
    if (getppid() == 1) _exit(125);
    exec_program(argv);
  }
  struct sigaction action = {0};
  action.sa_handler = forward;
  int forwarded[] = {SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGINT, SIGQUIT};
  for (unsigned i = 0; i < sizeof forwarded / sizeof *forwarded; i++) {
    /* On a terminal, Ctrl-C and Ctrl-\ reach the program directly: forwarding would double them. */
    if ((forwarded[i] == SIGINT || forwarded[i] == SIGQUIT) && isatty(0)) signal(forwarded[i], SIG_IGN);
    else sigaction(forwarded[i], &action, NULL);
  }
  sigprocmask(SIG_SETMASK, &old, NULL);
  return wait_child();
}

int main(int argc, char **argv) {
  if (argc >= 4 && strcmp(argv[1], "--join") == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    return join(argv[2], argv + 3);
  }
  if (argc < 3) {
    fprintf(stderr, "usage: fim_enter <pid> <program> [args...]\n       fim_enter --join <pid> <program> [args...]\n");
    return 125;
  }
  const char *pid = argv[1];
  int user = open_ns(pid, "ns/user"), pidns = open_ns(pid, "ns/pid"), mnt = open_ns(pid, "ns/mnt");
  if (user < 0 || pidns < 0 || mnt < 0) return 125;
  const char *others[] = {"ipc", "uts", "net", "cgroup"};
  const int types[] = {CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWNET, CLONE_NEWCGROUP};
  int other[4];
  for (int i = 0; i < 4; i++) {
    char name[16];
    snprintf(name, sizeof name, "ns/%s", others[i]);
    other[i] = open_ns(pid, name);
  }
  int owner = ioctl(pidns, NS_GET_USERNS);
  if (owner < 0) {
    fprintf(stderr, "fim_enter: cannot find the owner of the guest's pid namespace: %s\n", strerror(errno));
    return 125;
  }
  int enter_owner = !same_ns(owner, "user"), enter_user = !same_ns(user, "user"), enter_other[4];
  for (int i = 0; i < 4; i++) enter_other[i] = other[i] >= 0 && !same_ns(other[i], others[i]);
  if (enter_owner && enter(owner, CLONE_NEWUSER, "outer user") < 0) return 125;
  /* Opened with the outer namespace's capabilities: a guest started as root is not dumpable. */
  int root = open_ns(pid, "root"), cwd = open_ns(pid, "cwd");
  if (root < 0 || cwd < 0) return 125;
  if (enter(pidns, CLONE_NEWPID, "pid") < 0 || enter(mnt, CLONE_NEWNS, "mount") < 0) return 125;
  for (int i = 0; i < 4; i++) {
    if (enter_other[i] && enter(other[i], types[i], others[i]) < 0) return 125;
  }
  if (enter_user && enter(user, CLONE_NEWUSER, "user") < 0) return 125;
  if (fchdir(root) < 0 || chroot(".") < 0 || fchdir(cwd) < 0) {
    fprintf(stderr, "fim_enter: cannot move into the guest's root: %s\n", strerror(errno));
    return 125;
  }
  child = fork(); /* a new process is needed to be in the pid namespace */
  if (child < 0) return 125;
  if (child == 0) exec_program(argv + 2);
  signal(SIGINT, SIG_IGN); /* the terminal's Ctrl-C reaches the program directly */
  return wait_child();
}
