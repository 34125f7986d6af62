/* A small HTTP server with known memory behaviour, for the verdict corpus (test/verdicts).
 * One request per connection, handled by its path; every request also churns: it allocates
 * buffers of 16 B..8 KiB (8, or N with -c N, at most 64) and frees them before it answers (the
 * churn a leak hides in).
 *   /churn        churn only.
 *   /leak         churn, and 48 bytes kept for ever (vd_leak): a slow leak under heavy churn.
 *   /lru?K        an LRU cache of at most 144 entries of 2 KiB (vd_lru_insert); a miss on a full
 *                 cache frees the least recently used entry: it fills, then stays at capacity.
 *   /saw?N        appends 1 KiB to a batch (vd_batch_add); the batch is freed whole when it holds
 *                 N entries: a sawtooth.
 *   /step         the first time, a 256 KiB table (vd_step_table), kept: a step.
 *   /quit         answers, frees what the handlers hold (unless started with -k; the leaks
 *                 cannot be freed), and exits.
 * Usage: vd-server PORTFILE [-d] [-k] [-c N]. It listens on a port the kernel picks and writes
 * "PORT PID" to PORTFILE once it serves; -d daemonizes (fork, the parent exits, the child
 * serves); -k keeps everything at /quit (exit without freeing); -c N churns N buffers a request. */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LRU_CAP 144

struct entry { struct entry *prev, *next; int key; char data[2048]; };
static struct entry *lru_head, *lru_tail;
static int lru_count;
static void **batch;
static int batch_len;
static char *step_table;
static unsigned rng_state = 12345;
/* volatile: the compiler may not drop the leaked block as unused */
static void *volatile last_leak;
static void *volatile config_keep;

static unsigned rnd(void) { rng_state = rng_state * 1103515245u + 12345u; return rng_state >> 8; }

static int churn_count = 8;

static __attribute__((noinline)) void vd_churn(void) {
  void *bufs[64];
  for (int i = 0; i < churn_count; i++) {
    size_t n = 16 + rnd() % 8192;
    bufs[i] = malloc(n);
    memset(bufs[i], i, n < 64 ? n : 64);
  }
  for (int i = churn_count - 1; i >= 0; i--) free(bufs[i]);
}

static __attribute__((noinline)) void vd_leak(void) {
  char *p = malloc(48);
  memset(p, 0x5a, 48);
  last_leak = p;  /* overwritten by the next one: nothing can free it */
}

static void lru_unlink(struct entry *e) {
  if (e->prev) e->prev->next = e->next; else lru_head = e->next;
  if (e->next) e->next->prev = e->prev; else lru_tail = e->prev;
}

static void lru_front(struct entry *e) {
  e->prev = NULL;
  e->next = lru_head;
  if (lru_head) lru_head->prev = e;
  lru_head = e;
  if (!lru_tail) lru_tail = e;
}

static __attribute__((noinline)) struct entry *vd_lru_insert(int key) {
  struct entry *e = malloc(sizeof *e);
  e->key = key;
  memset(e->data, key, sizeof e->data);
  lru_front(e);
  lru_count++;
  return e;
}

static void vd_lru(int key) {
  for (struct entry *e = lru_head; e; e = e->next) {
    if (e->key == key) { lru_unlink(e); lru_front(e); return; }
  }
  if (lru_count >= LRU_CAP) {
    struct entry *old = lru_tail;
    lru_unlink(old);
    free(old);
    lru_count--;
  }
  vd_lru_insert(key);
}

static __attribute__((noinline)) void vd_batch_add(int n) {
  if (!batch) batch = calloc(4096, sizeof *batch);
  void *p = malloc(1024);
  memset(p, 1, 1024);
  batch[batch_len++] = p;
  if (batch_len >= n || batch_len >= 4096) {
    for (int i = 0; i < batch_len; i++) free(batch[i]);
    batch_len = 0;
  }
}

static __attribute__((noinline)) void vd_step_table(void) {
  if (step_table) return;
  step_table = malloc(256 * 1024);
  memset(step_table, 7, 256 * 1024);
}

static void release_all(void) {
  while (lru_head) { struct entry *e = lru_head; lru_unlink(e); free(e); }
  for (int i = 0; i < batch_len; i++) free(batch[i]);
  free(batch);
  free(step_table);
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: vd-server PORTFILE [-d] [-k] [-c N]\n"); return 2; }
  int daemonize = 0, keep = 0;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "-d")) daemonize = 1;
    else if (!strcmp(argv[i], "-k")) keep = 1;
    else if (!strcmp(argv[i], "-c") && i + 1 < argc) {
      churn_count = atoi(argv[++i]);
      if (churn_count < 0 || churn_count > 64) churn_count = 8;
    }
  }
  int s = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 64)) { perror("vd-server: listen"); return 1; }
  socklen_t len = sizeof a;
  getsockname(s, (struct sockaddr *)&a, &len);
  /* start-up: a configuration the server keeps for its life */
  char *config = malloc(32 * 1024);
  memset(config, 1, 32 * 1024);
  config_keep = config;  /* made before a fork: the launcher holds it too */
  if (daemonize) {
    pid_t pid = fork();
    if (pid < 0) { perror("vd-server: fork"); return 1; }
    if (pid > 0) exit(0); /* the launcher leaves at once, as daemons' parents do */
    setsid();
  }
  /* the port is written once the serving process runs: a client may connect when it appears */
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", argv[1]);
  FILE *f = fopen(tmp, "w");
  if (!f) { perror("vd-server: port file"); return 1; }
  fprintf(f, "%d %d\n", ntohs(a.sin_port), (int)getpid());
  fclose(f);
  rename(tmp, argv[1]);
  char req[1024];
  for (;;) {
    int c = accept(s, NULL, NULL);
    if (c < 0) continue;
    ssize_t n = read(c, req, sizeof req - 1);
    if (n <= 0) { close(c); continue; }
    req[n] = 0;
    char path[256] = "";
    sscanf(req, "GET %255s", path);
    char *q = strchr(path, '?');
    int arg = q ? atoi(q + 1) : 0;
    if (q) *q = 0;
    int quit = 0;
    vd_churn();
    if (!strcmp(path, "/leak")) vd_leak();
    else if (!strcmp(path, "/lru")) vd_lru(arg);
    else if (!strcmp(path, "/saw")) vd_batch_add(arg > 0 ? arg : 100);
    else if (!strcmp(path, "/step")) vd_step_table();
    else if (!strcmp(path, "/quit")) quit = 1;
    static const char ok[] = "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
    if (write(c, ok, sizeof ok - 1) < 0) { /* the client went away */ }
    close(c);
    if (quit) break;
  }
  close(s);
  if (!keep) {
    release_all();
    free(config);
  }
  return 0;
}
