/* att-server: a pre-forked HTTP/1.0 test server with a pool per request (att-mpool.h), built
 * -O2 -fomit-frame-pointer like a distribution binary.
 *
 *   att-server PORT WORKERS
 * The master listens on 127.0.0.1:PORT, forks WORKERS workers that accept on the shared socket,
 * prints "ready" and waits for them. Every request gets a request pool, destroyed after the
 * response; GET /leak also makes a "session" pool in remember_session() that nothing ever
 * destroys (the leak). Each response names the worker (X-Worker: PID) so a test can count
 * per worker. SIGTERM to the master ends the workers too. */
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "att-mpool.h"

static volatile unsigned long sink;
static mp_pool_t *worker_pool;

NOINLINE void remember_session(mp_pool_t *req, const char *path)
{
  mp_pool_t *s = mp_create(worker_pool, 1024);
  mp_tag(s, "session");
  char *copy = mp_alloc(s, strlen(path) + 1);
  strcpy(copy, path);
  sink += (unsigned long)copy + (unsigned long)req;
  /* forgot: mp_destroy(s) when the session ends */
}

NOINLINE int handle_request(int fd, const char *buf)
{
  mp_pool_t *req = mp_create(worker_pool, 2048);
  mp_tag(req, "request");
  char *path = mp_alloc(req, 256);
  if (sscanf(buf, "GET %255s", path) != 1) strcpy(path, "/");
  for (int i = 0; i < 4; i++) sink += (unsigned long)mp_alloc(req, 128);
  if (strcmp(path, "/leak") == 0) remember_session(req, path);
  char *resp = mp_alloc(req, 256);
  int n = snprintf(resp, 256, "HTTP/1.0 200 OK\r\nX-Worker: %d\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n", (int)getpid());
  int r = (int)write(fd, resp, n);
  mp_destroy(req);
  return r;
}

static void worker(int lfd)
{
  worker_pool = mp_create(NULL, 4096);
  mp_tag(worker_pool, "worker");
  for (;;) {
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) continue;
    char buf[2048];
    ssize_t got = 0;
    while (got < (ssize_t)sizeof(buf) - 1) {
      ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
      if (r <= 0) break;
      got += r;
      buf[got] = 0;
      if (strstr(buf, "\r\n\r\n")) break;
    }
    buf[got > 0 ? got : 0] = 0;
    if (got > 0) handle_request(fd, buf);
    close(fd);
  }
}

static pid_t kids[64];
static int nkids;

static void on_term(int sig)
{
  for (int i = 0; i < nkids; i++) kill(kids[i], SIGTERM);
  _exit(0);
}

int main(int argc, char **argv)
{
  int port = argc > 1 ? atoi(argv[1]) : 18250;
  int n = argc > 2 ? atoi(argv[2]) : 2;
  if (n < 1 || n > 64) n = 2;
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 128)) { perror("att-server"); return 1; }
  for (int i = 0; i < n; i++) {
    pid_t p = fork();
    if (p == 0) {
      signal(SIGTERM, SIG_DFL);
      prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the master, even a killed one */
      worker(lfd);
      _exit(0);
    }
    kids[nkids++] = p;
  }
  signal(SIGTERM, on_term);
  printf("ready %d\n", (int)getpid());
  fflush(stdout);
  while (wait(NULL) > 0) {}
  return 0;
}
