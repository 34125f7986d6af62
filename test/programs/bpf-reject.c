/* Loads one program of an object file and prints the load outcome in one line, as the loaders
 * do (native/common/ls_verify.h): bpf-reject OBJ PROG [verify]. Without `verify`, as a normal
 * load (no log unless it fails); with it, as a loader's verify mode (statistics log). */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <bpf/libbpf.h>
#include "ls_verify.h"

static int capture(enum libbpf_print_level lvl, const char *fmt, va_list ap) {
  ls_verify_libbpf(lvl, fmt, ap);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 3 && !(argc == 4 && !strcmp(argv[3], "verify"))) { fprintf(stderr, "usage: bpf-reject OBJ PROG [verify]\n"); return 2; }
  libbpf_set_print(capture);
  struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
  if (!obj) { printf("cannot open %s\n", argv[1]); return 1; }
  struct bpf_program *p;
  bpf_object__for_each_program(p, obj) bpf_program__set_autoload(p, !strcmp(bpf_program__name(p), argv[2]));
  struct ls_verify v;
  ls_verify_prepare(&v, obj, argc == 4 ? LS_VERIFY_STATS : LS_VERIFY_ON_FAILURE);
  int err = bpf_object__load(obj);
  if (err) {
    char why[1024];
    ls_verify_reason(&v, err < 0 ? -err : errno, why, sizeof why);
    printf("%s\n", why);
  } else ls_verify_print(&v, obj, stdout, "bpf-reject", "test");
  bpf_object__close(obj);
  ls_verify_free(&v);
  return err ? 1 : 0;
}
