/* fim_sigdfl: restores every signal to its default disposition, unblocks them all, then
 * runs the given program. The runtime starts bubblewrap with SIGINT ignored, so that a
 * Ctrl-C on the terminal does not kill the sandbox's supervisors; the guest program is
 * started through this so that it gets Ctrl-C as usual. (A shell cannot do this: signals
 * ignored on entry to a non-interactive shell cannot be reset.) */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: fim_sigdfl <program> [args...]\n");
    return 127;
  }
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  execvp(argv[1], argv + 1);
  fprintf(stderr, "fim_sigdfl: %s: %s\n", argv[1], strerror(errno));
  return errno == ENOENT ? 127 : 126;
}
