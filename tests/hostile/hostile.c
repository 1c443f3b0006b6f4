/*
 * Hostile files and inputs through the C API: special files where a regular
 * file is expected, sparse huge files, deep nesting, huge names, corrupt ELF
 * libraries, hostile packages and Python plugins that never finish.
 *
 * Each case runs in a process of its own (fork), so a crash or a hang is one
 * failed case, not a dead runner; each must end with one specific status
 * within its time bound (scaled by $HOSTILE_TIME_SCALE under valgrind).
 */
#define _GNU_SOURCE
#include "fidius_host.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NT FIDIUS_HOST_NUL_TERMINATED
#define GIB (1024ull * 1024 * 1024)

static const char *fixtures;
static char scratch[256];
/* How much slower than native this run is (valgrind): time bounds and
 * deadlines are scaled by it. */
static unsigned scale = 1;

/* ---- files -------------------------------------------------------------- */

static const char *at(const char *dir, const char *name) {
    static char buf[16][4096];
    static int next;
    char *out = buf[next++ % 16];
    snprintf(out, 4096, "%s/%s", dir, name);
    return out;
}

static const char *fixture(const char *relative) { return at(fixtures, relative); }

/* A fresh directory for one case. */
static const char *case_dir(const char *name) {
    static char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", scratch, name);
    mkdir(dir, 0755);
    return dir;
}

static void write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len) {
        perror(path);
        exit(90);
    }
    fclose(f);
}

static void write_text(const char *path, const char *text) { write_file(path, text, strlen(text)); }

static uint8_t *read_whole(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    uint8_t *data;
    long size;
    if (f == NULL) {
        perror(path);
        exit(90);
    }
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    data = malloc((size_t)size);
    if (data == NULL || fread(data, 1, (size_t)size, f) != (size_t)size) {
        perror(path);
        exit(90);
    }
    fclose(f);
    *len = (size_t)size;
    return data;
}

/* A file of `size` bytes that takes no disk: `head` then a hole. */
static void sparse_file(const char *path, uint64_t size, const void *head, size_t head_len) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || (head_len && write(fd, head, head_len) != (ssize_t)head_len) || ftruncate(fd, (off_t)size) != 0) {
        perror(path);
        exit(90);
    }
    close(fd);
}

static void fifo(const char *path) {
    if (mkfifo(path, 0644) != 0) {
        perror(path);
        exit(90);
    }
}

static void link_to(const char *target, const char *path) {
    if (symlink(target, path) != 0) {
        perror(path);
        exit(90);
    }
}

static void copy_fixture(const char *relative, const char *dst) {
    size_t len;
    uint8_t *data = read_whole(fixture(relative), &len);
    write_file(dst, data, len);
    free(data);
}

/* ---- expectations ------------------------------------------------------- */

/* Whether `got` is `want`, with a message (in `err`, freed here) that is
 * non-empty and bounded; says what happened otherwise. */
/* A step that sets a case up; its failure is the harness's, not the case's. */
static void setup(fidius_host_status st) {
    if (st != FIDIUS_HOST_STATUS_OK)
        exit(92);
}

static int expect(const char *what, fidius_host_status got, fidius_host_error_t **errp, fidius_host_status want) {
    fidius_host_error_t *err = *errp;
    const char *message = err ? fidius_host_error_message(err) : "";
    int ok = got == want && (want == FIDIUS_HOST_STATUS_OK || (err != NULL && message[0] != '\0' && strlen(message) < 20000));
    if (!ok)
        fprintf(stderr, "    %s: got %s, want %s: %.400s\n", what, fidius_host_status_name(got),
                fidius_host_status_name(want), message);
    fidius_host_error_free(err);
    *errp = NULL;
    return ok;
}

static fidius_host_t *build(fidius_host_builder_t *b) {
    fidius_host_t *host = NULL;
    if (fidius_host_builder_build(b, &host, NULL) != FIDIUS_HOST_STATUS_OK)
        exit(91);
    return host;
}

static fidius_host_t *plain_host(const char *search_path) {
    fidius_host_builder_t *b = fidius_host_builder_new();
    if (search_path)
        setup(fidius_host_builder_add_search_path(b, search_path, NT, NULL));
    return build(b);
}

static fidius_host_t *signed_host(const char *search_path) {
    fidius_host_builder_t *b = fidius_host_builder_new();
    if (search_path)
        setup(fidius_host_builder_add_search_path(b, search_path, NT, NULL));
    setup(fidius_host_builder_set_require_signature(b, true, NULL));
    if (fidius_host_builder_add_trusted_key_file(b, fixture("keys/trusted.public"), NT, NULL) != FIDIUS_HOST_STATUS_OK)
        exit(91);
    return build(b);
}

static int load_path_is(fidius_host_t *host, const char *path, const fidius_host_load_options_t *options,
                        fidius_host_status want) {
    fidius_host_plugin_t *p = NULL;
    fidius_host_error_t *err = NULL;
    fidius_host_status st = fidius_host_load_path(host, path, NT, NULL, 0, options, &p, &err);
    int ok = expect(path, st, &err, want) && (p == NULL) == (want != FIDIUS_HOST_STATUS_OK);
    fidius_host_plugin_free(p);
    return ok;
}

static int load_name_is(fidius_host_t *host, const char *name, fidius_host_status want) {
    fidius_host_plugin_t *p = NULL;
    fidius_host_error_t *err = NULL;
    int ok = expect(name, fidius_host_load(host, name, NT, NULL, &p, &err), &err, want);
    fidius_host_plugin_free(p);
    return ok;
}

static fidius_host_load_options_t *options_with(const char *interface_file) {
    fidius_host_load_options_t *o = fidius_host_load_options_new();
    fidius_host_interface_t *iface = NULL;
    if (fidius_host_interface_new_from_file(fixture(interface_file), NT, &iface, NULL) != FIDIUS_HOST_STATUS_OK)
        exit(91);
    setup(fidius_host_load_options_set_interface(o, iface, NULL));
    fidius_host_interface_free(iface);
    return o;
}

/* ---- special files and unbounded reads ---------------------------------- */

/* A signed host meets a .sig that is `make(sig path)`. */
static int signature_is(const char *name, void (*make)(const char *), fidius_host_status want) {
    const char *dir = case_dir(name);
    const char *lib = at(dir, "libcalc_plugin.so");
    fidius_host_t *host;
    int ok;
    copy_fixture("plugins/libcalc_plugin.so", lib);
    make(at(dir, "libcalc_plugin.so.sig"));
    host = signed_host(dir);
    ok = load_path_is(host, lib, NULL, want);
    ok &= load_name_is(host, "BasicCalculator", want);
    fidius_host_free(host);
    return ok;
}

static void make_fifo(const char *path) { fifo(path); }
static void make_dev_zero(const char *path) { link_to("/dev/zero", path); }
static void make_dev_urandom(const char *path) { link_to("/dev/urandom", path); }
static void make_dir(const char *path) { mkdir(path, 0755); }
static void make_sparse_4g(const char *path) { sparse_file(path, 4 * GIB, NULL, 0); }
static void make_proc(const char *path) { link_to("/proc/self/maps", path); }

static int sig_fifo(void) { return signature_is("sig_fifo", make_fifo, FIDIUS_HOST_STATUS_NOT_A_REGULAR_FILE); }
static int sig_dev_zero(void) { return signature_is("sig_zero", make_dev_zero, FIDIUS_HOST_STATUS_NOT_A_REGULAR_FILE); }
static int sig_dir(void) { return signature_is("sig_dir", make_dir, FIDIUS_HOST_STATUS_NOT_A_REGULAR_FILE); }
static int sig_sparse(void) { return signature_is("sig_sparse", make_sparse_4g, FIDIUS_HOST_STATUS_SIGNATURE_INVALID); }
static int sig_proc(void) { return signature_is("sig_proc", make_proc, FIDIUS_HOST_STATUS_SIGNATURE_INVALID); }

static int key_file_is(const char *name, void (*make)(const char *), fidius_host_status want) {
    const char *path = at(case_dir(name), "key.public");
    fidius_host_builder_t *b = fidius_host_builder_new();
    fidius_host_error_t *err = NULL;
    int ok;
    make(path);
    ok = expect(path, fidius_host_builder_add_trusted_key_file(b, path, NT, &err), &err, want);
    fidius_host_builder_free(b);
    return ok;
}

static int key_fifo(void) { return key_file_is("key_fifo", make_fifo, FIDIUS_HOST_STATUS_NOT_A_REGULAR_FILE); }
static int key_urandom(void) { return key_file_is("key_urandom", make_dev_urandom, FIDIUS_HOST_STATUS_NOT_A_REGULAR_FILE); }
static int key_sparse(void) { return key_file_is("key_sparse", make_sparse_4g, FIDIUS_HOST_STATUS_INVALID_KEY); }
static int key_proc(void) { return key_file_is("key_proc", make_proc, FIDIUS_HOST_STATUS_INVALID_KEY); }

static int interface_file_is(const char *name, void (*make)(const char *), fidius_host_status want) {
    const char *path = at(case_dir(name), "iface.toml");
    fidius_host_interface_t *iface = NULL;
    fidius_host_error_t *err = NULL;
    int ok;
    make(path);
    ok = expect(path, fidius_host_interface_new_from_file(path, NT, &iface, &err), &err, want) && iface == NULL;
    return ok;
}

static int iface_fifo(void) { return interface_file_is("iface_fifo", make_fifo, FIDIUS_HOST_STATUS_NOT_A_REGULAR_FILE); }
static int iface_zero(void) { return interface_file_is("iface_zero", make_dev_zero, FIDIUS_HOST_STATUS_NOT_A_REGULAR_FILE); }
static int iface_sparse(void) { return interface_file_is("iface_sparse", make_sparse_4g, FIDIUS_HOST_STATUS_FILE_TOO_LARGE); }
static int iface_proc(void) { return interface_file_is("iface_proc", make_proc, FIDIUS_HOST_STATUS_INVALID_INTERFACE); }

/* Libraries: special files named like libraries, and a sparse 4 GiB file
 * whose header is a real library's (read past the header only up to the
 * limit) or zeros (refused after 64 bytes). */
static int library_is(const char *name, void (*make)(const char *), fidius_host_status want) {
    const char *dir = case_dir(name);
    const char *path = at(dir, "libhostile.so");
    fidius_host_t *host;
    fidius_host_discovery_t *found = NULL;
    int ok;
    make(path);
    host = plain_host(dir);
    ok = load_path_is(host, path, NULL, want);
    ok &= fidius_host_discover(host, &found, NULL) == FIDIUS_HOST_STATUS_OK;
    ok &= fidius_host_discovery_skipped_count(found) == 1 && fidius_host_discovery_skipped_status(found, 0) == want;
    fidius_host_discovery_free(found);
    fidius_host_free(host);
    return ok;
}

static void make_elf_sparse(const char *path) {
    size_t len;
    uint8_t *lib = read_whole(fixture("plugins/libcalc_plugin.so"), &len);
    sparse_file(path, 4 * GIB, lib, 4096);
    free(lib);
}

static int lib_fifo(void) { return library_is("lib_fifo", make_fifo, FIDIUS_HOST_STATUS_NOT_A_REGULAR_FILE); }
static int lib_zero(void) { return library_is("lib_zero", make_dev_zero, FIDIUS_HOST_STATUS_NOT_A_REGULAR_FILE); }
static int lib_sparse_zeros(void) { return library_is("lib_sparse0", make_sparse_4g, FIDIUS_HOST_STATUS_NOT_A_LIBRARY); }
static int lib_sparse_elf(void) { return library_is("lib_sparse_elf", make_elf_sparse, FIDIUS_HOST_STATUS_FILE_TOO_LARGE); }

/* ---- hostile packages --------------------------------------------------- */

/* A copy of the unsigned (or signed) calc WASM package in which `file` is
 * replaced by `make(path)`. */
static int wasm_package_is(const char *name, int sign, const char *file, void (*make)(const char *),
                           fidius_host_status want) {
    const char *dir = case_dir(name);
    const char *pkg = at(dir, "calc");
    const char *source = sign ? "wasm-signed/calc" : "wasm/calc";
    fidius_host_load_options_t *o = options_with("interfaces/calculator.toml");
    fidius_host_t *host;
    char command[8192];
    int ok;
    snprintf(command, sizeof command, "cp -r '%s' '%s'", fixture(source), pkg);
    if (system(command) != 0)
        exit(90);
    if (file != NULL) {
        unlink(at(pkg, file));
        make(at(pkg, file));
    }
    host = sign ? signed_host(dir) : plain_host(dir);
    ok = load_path_is(host, pkg, o, want);
    fidius_host_load_options_free(o);
    fidius_host_free(host);
    return ok;
}

static void make_sparse_manifest(const char *path) { sparse_file(path, 2 * GIB, NULL, 0); }

static int pkg_component_fifo(void) {
    return wasm_package_is("pkg_component_fifo", 0, "calc_component.wasm", make_fifo, FIDIUS_HOST_STATUS_NOT_A_REGULAR_FILE);
}
static int pkg_component_zero(void) {
    /* A link out of the package is refused before it is followed. */
    return wasm_package_is("pkg_component_zero", 0, "calc_component.wasm", make_dev_zero, FIDIUS_HOST_STATUS_INVALID_MANIFEST);
}
static int pkg_manifest_sparse(void) {
    return wasm_package_is("pkg_manifest_sparse", 0, "package.toml", make_sparse_manifest, FIDIUS_HOST_STATUS_FILE_TOO_LARGE);
}
static int pkg_signed_sig_fifo(void) {
    return wasm_package_is("pkg_sig_fifo", 1, "package.sig", make_fifo, FIDIUS_HOST_STATUS_NOT_A_REGULAR_FILE);
}
static int pkg_signed_extra_fifo(void) {
    return wasm_package_is("pkg_extra_fifo", 1, "extra.bin", make_fifo, FIDIUS_HOST_STATUS_NOT_A_REGULAR_FILE);
}
static int pkg_signed_extra_sparse(void) {
    return wasm_package_is("pkg_extra_sparse", 1, "extra.bin", make_sparse_4g, FIDIUS_HOST_STATUS_FILE_TOO_LARGE);
}
static int pkg_signed_extra_link_to_device(void) {
    return wasm_package_is("pkg_extra_dev", 1, "extra.bin", make_dev_urandom, FIDIUS_HOST_STATUS_INVALID_MANIFEST);
}

/* ---- deep nesting and huge inputs --------------------------------------- */

/* "prefix" + open * n + "u8" + close * n + "suffix", malloc'd. */
static char *nested(const char *prefix, const char *open, const char *close, size_t n, const char *suffix) {
    size_t len = strlen(prefix) + n * (strlen(open) + strlen(close)) + strlen(suffix) + 3;
    char *text = malloc(len), *p = text;
    size_t i;
    p += sprintf(p, "%s", prefix);
    for (i = 0; i < n; i++)
        p += sprintf(p, "%s", open);
    p += sprintf(p, "u8");
    for (i = 0; i < n; i++)
        p += sprintf(p, "%s", close);
    sprintf(p, "%s", suffix);
    return text;
}

static int deep_method(void) {
    fidius_host_interface_builder_t *b = NULL;
    fidius_host_error_t *err = NULL;
    char *sig = nested("f:", "Vec<", ">", 10000, "->u8");
    int ok = fidius_host_interface_builder_new("I", NT, 1, &b, NULL) == FIDIUS_HOST_STATUS_OK;
    ok &= expect("add_method", fidius_host_interface_builder_add_method(b, sig, NT, 0, &err), &err, FIDIUS_HOST_STATUS_INVALID_INTERFACE);
    free(sig);
    sig = nested("f:", "(", ",)", 10000, "->u8");
    ok &= expect("add_method (tuples)", fidius_host_interface_builder_add_method(b, sig, NT, 0, &err), &err, FIDIUS_HOST_STATUS_INVALID_INTERFACE);
    free(sig);
    fidius_host_interface_builder_free(b);
    return ok;
}

static int deep_type(void) {
    fidius_host_interface_builder_t *b = NULL;
    fidius_host_error_t *err = NULL;
    char *decl = nested("struct S { x: ", "[", "; 2]", 10000, " }");
    int ok = fidius_host_interface_builder_new("I", NT, 1, &b, NULL) == FIDIUS_HOST_STATUS_OK;
    ok &= expect("add_type", fidius_host_interface_builder_add_type(b, decl, NT, &err), &err, FIDIUS_HOST_STATUS_INVALID_INTERFACE);
    free(decl);
    fidius_host_interface_builder_free(b);
    return ok;
}

static int deep_hash(void) {
    fidius_host_error_t *err = NULL;
    uint64_t hash = 1;
    char *sig = nested("f:", "Option<", ">", 5000, "->u8");
    fidius_host_str_t sigs[1];
    int ok;
    sigs[0].data = sig;
    sigs[0].len = strlen(sig);
    ok = expect("signatures_hash", fidius_host_signatures_hash(sigs, 1, &hash, &err), &err, FIDIUS_HOST_STATUS_INVALID_INTERFACE);
    free(sig);
    return ok;
}

static int deep_toml(void) {
    fidius_host_interface_t *iface = NULL;
    fidius_host_error_t *err = NULL;
    char *text = nested("name = \"I\"\nversion = 1\n[[methods]]\nsignature = \"f:", "Vec<", ">", 10000, "->u8\"\n");
    char *arrays = nested("name = \"I\"\nversion = 1\nx = ", "[", "]", 100000, "\n");
    const char *path = at(case_dir("deep_toml"), "deep.toml");
    int ok = expect("from_toml", fidius_host_interface_new_from_toml(text, NT, &iface, &err), &err, FIDIUS_HOST_STATUS_INVALID_INTERFACE);
    /* "u8" inside the innermost array is not TOML either way; the depth is
     * what must not crash. */
    ok &= expect("from_toml (arrays)", fidius_host_interface_new_from_toml(arrays, NT, &iface, &err), &err, FIDIUS_HOST_STATUS_INVALID_INTERFACE);
    write_text(path, text);
    ok &= expect("from_file", fidius_host_interface_new_from_file(path, NT, &iface, &err), &err, FIDIUS_HOST_STATUS_INVALID_INTERFACE);
    free(text);
    free(arrays);
    return ok && iface == NULL;
}

/* A 64 MiB plugin name: not found, with a message that quotes a bounded
 * prefix of it. */
static int huge_name(void) {
    size_t len = 64u << 20;
    char *name = malloc(len);
    fidius_host_t *host = plain_host(fixture("plugins"));
    fidius_host_plugin_t *p = NULL;
    fidius_host_error_t *err = NULL;
    int ok;
    memset(name, 'A', len);
    ok = fidius_host_load(host, name, len, NULL, &p, &err) == FIDIUS_HOST_STATUS_PLUGIN_NOT_FOUND;
    ok &= err != NULL && strlen(fidius_host_error_message(err)) < 4096 &&
          strstr(fidius_host_error_message(err), "(67108864 bytes)") != NULL;
    if (!ok)
        fprintf(stderr, "    %.300s\n", err ? fidius_host_error_message(err) : "no error");
    fidius_host_error_free(err);
    free(name);
    fidius_host_free(host);
    return ok && p == NULL;
}

/* Oversized text from the caller is refused before it is used: an 8 KiB
 * path, 2 MiB of interface text, 65 MiB of JSON arguments. */
static int oversized_inputs(void) {
    size_t path_len = 8192, toml_len = 2u << 20, json_len = 65u << 20;
    char *path = malloc(path_len + 1), *toml = malloc(toml_len + 1), *json = malloc(json_len + 1);
    fidius_host_t *host = plain_host(NULL);
    fidius_host_plugin_t *p = NULL;
    fidius_host_interface_t *iface = NULL;
    fidius_host_load_options_t *o = options_with("interfaces/calculator.toml");
    fidius_host_error_t *err = NULL;
    char *out = NULL;
    int ok;
    memset(path, 'a', path_len);
    path[0] = '/';
    path[path_len] = '\0';
    memset(toml, ' ', toml_len);
    toml[toml_len] = '\0';
    memset(json, ' ', json_len);
    json[0] = '[';
    json[json_len - 1] = ']';
    json[json_len] = '\0';
    ok = load_path_is(host, path, NULL, FIDIUS_HOST_STATUS_INVALID_ARGUMENT);
    ok &= expect("from_toml", fidius_host_interface_new_from_toml(toml, NT, &iface, &err), &err,
                 FIDIUS_HOST_STATUS_INVALID_INTERFACE) && iface == NULL;
    ok &= expect("load", fidius_host_load_path(host, fixture("plugins/libcalc_plugin.so"), NT, "BasicCalculator", NT, o, &p, &err),
                 &err, FIDIUS_HOST_STATUS_OK);
    ok &= expect("call_json", fidius_host_plugin_call_json(p, "add", NT, json, json_len, &out, NULL, &err), &err,
                 FIDIUS_HOST_STATUS_INPUT_TOO_LARGE) && out == NULL;
    fidius_host_plugin_free(p);
    fidius_host_load_options_free(o);
    fidius_host_free(host);
    free(path);
    free(toml);
    free(json);
    return ok;
}

/* ---- corrupt ELF libraries ---------------------------------------------- */

/* The calc plugin with one defect; writes it to `path`. */
typedef void (*defect_fn)(uint8_t *lib, size_t len);

static Elf64_Phdr *program_header(uint8_t *lib, uint32_t type) {
    Elf64_Ehdr *eh = (Elf64_Ehdr *)lib;
    int i;
    for (i = 0; i < eh->e_phnum; i++) {
        Elf64_Phdr *ph = (Elf64_Phdr *)(lib + eh->e_phoff + (size_t)i * eh->e_phentsize);
        if (ph->p_type == type)
            return ph;
    }
    exit(92);
}

static Elf64_Dyn *dynamic_entry(uint8_t *lib, int64_t tag) {
    Elf64_Phdr *ph = program_header(lib, PT_DYNAMIC);
    Elf64_Dyn *d = (Elf64_Dyn *)(lib + ph->p_offset);
    for (; d->d_tag != DT_NULL; d++)
        if (d->d_tag == tag)
            return d;
    exit(93);
}

static void wild_dynamic(uint8_t *lib, size_t len) {
    Elf64_Phdr *ph = program_header(lib, PT_DYNAMIC);
    (void)len;
    ph->p_vaddr = ph->p_offset = 0x7fffffff0000ull;
}
static void zeroed_dynamic(uint8_t *lib, size_t len) {
    Elf64_Phdr *ph = program_header(lib, PT_DYNAMIC);
    (void)len;
    memset(lib + ph->p_offset, 0, ph->p_filesz);
}
static void garbage_dynamic(uint8_t *lib, size_t len) {
    Elf64_Phdr *ph = program_header(lib, PT_DYNAMIC);
    uint64_t i, state = 0x9e3779b97f4a7c15ull;
    (void)len;
    for (i = 0; i < ph->p_filesz; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        lib[ph->p_offset + i] = (uint8_t)(state >> 56);
    }
}
static void unterminated_dynamic(uint8_t *lib, size_t len) {
    Elf64_Phdr *ph = program_header(lib, PT_DYNAMIC);
    Elf64_Dyn *d = (Elf64_Dyn *)(lib + ph->p_offset);
    size_t i, n = ph->p_filesz / sizeof *d;
    (void)len;
    for (i = 0; i < n; i++)
        if (d[i].d_tag == DT_NULL)
            d[i].d_tag = DT_DEBUG;
}
static void wild_strtab(uint8_t *lib, size_t len) {
    (void)len;
    dynamic_entry(lib, DT_STRTAB)->d_un.d_ptr = 0xdeadbeef000ull;
}
static void huge_strsz(uint8_t *lib, size_t len) {
    (void)len;
    dynamic_entry(lib, DT_STRSZ)->d_un.d_val = 1ull << 40;
}
static void wild_symtab(uint8_t *lib, size_t len) {
    (void)len;
    dynamic_entry(lib, DT_SYMTAB)->d_un.d_ptr = 0xdeadbeef000ull;
}
static void wild_gnu_hash(uint8_t *lib, size_t len) {
    (void)len;
    dynamic_entry(lib, DT_GNU_HASH)->d_un.d_ptr = 0xdeadbeef000ull;
}
static void huge_relasz(uint8_t *lib, size_t len) {
    (void)len;
    dynamic_entry(lib, DT_RELASZ)->d_un.d_val = 1ull << 40;
}
static void wild_relocation(uint8_t *lib, size_t len) {
    Elf64_Dyn *rela = dynamic_entry(lib, DT_RELA);
    Elf64_Phdr *load = program_header(lib, PT_LOAD);
    Elf64_Rela *first = (Elf64_Rela *)(lib + load->p_offset + (rela->d_un.d_ptr - load->p_vaddr));
    (void)len;
    first->r_offset = 0x7fff00000000ull;
}
static void wild_init_array(uint8_t *lib, size_t len) {
    (void)len;
    dynamic_entry(lib, DT_INIT_ARRAY)->d_un.d_ptr = 0xdeadbeef000ull;
}
static void many_program_headers(uint8_t *lib, size_t len) {
    (void)len;
    ((Elf64_Ehdr *)lib)->e_phnum = 0xffff;
}
static void program_headers_past_end(uint8_t *lib, size_t len) {
    ((Elf64_Ehdr *)lib)->e_phoff = len - 8;
}
static void segment_past_end(uint8_t *lib, size_t len) {
    Elf64_Phdr *ph = program_header(lib, PT_LOAD);
    ph->p_filesz = ph->p_memsz = len * 2;
}

static const struct {
    const char *name;
    defect_fn defect;
} defects[] = {
    {"wild_dynamic", wild_dynamic},
    {"zeroed_dynamic", zeroed_dynamic},
    {"garbage_dynamic", garbage_dynamic},
    {"unterminated_dynamic", unterminated_dynamic},
    {"wild_strtab", wild_strtab},
    {"huge_strsz", huge_strsz},
    {"wild_symtab", wild_symtab},
    {"wild_gnu_hash", wild_gnu_hash},
    {"huge_relasz", huge_relasz},
    {"wild_relocation", wild_relocation},
    {"wild_init_array", wild_init_array},
    {"many_program_headers", many_program_headers},
    {"program_headers_past_end", program_headers_past_end},
    {"segment_past_end", segment_past_end},
};
#define DEFECTS (sizeof defects / sizeof defects[0])

/* Writes lib_<defect>.so into `dir` for every defect. */
static void write_corrupt_libraries(const char *dir) {
    size_t len, i;
    uint8_t *good = read_whole(fixture("plugins/libcalc_plugin.so"), &len);
    uint8_t *copy = malloc(len);
    for (i = 0; i < DEFECTS; i++) {
        char name[128];
        memcpy(copy, good, len);
        defects[i].defect(copy, len);
        snprintf(name, sizeof name, "lib_%s.so", defects[i].name);
        write_file(at(dir, name), copy, len);
    }
    free(copy);
    free(good);
}

/* Every corrupt variant is NOT_A_LIBRARY, loaded by path. */
static int corrupt_elf_by_path(void) {
    const char *dir = case_dir("corrupt_path");
    fidius_host_t *host = plain_host(NULL);
    size_t i;
    int ok = 1;
    write_corrupt_libraries(dir);
    for (i = 0; i < DEFECTS; i++) {
        char name[128];
        snprintf(name, sizeof name, "lib_%s.so", defects[i].name);
        ok &= load_path_is(host, at(dir, name), NULL, FIDIUS_HOST_STATUS_NOT_A_LIBRARY);
    }
    fidius_host_free(host);
    return ok;
}

/* A folder of corrupt libraries (scanned first: their names sort first)
 * and one good plugin: discovery lists every corrupt one as skipped, and
 * load by name finds the good one. */
static int corrupt_elf_neighbours(void) {
    const char *dir = case_dir("corrupt_folder");
    fidius_host_t *host;
    fidius_host_discovery_t *found = NULL;
    int ok;
    write_corrupt_libraries(dir);
    copy_fixture("plugins/libcalc_plugin.so", at(dir, "libz_calc.so"));
    host = plain_host(dir);
    ok = fidius_host_discover(host, &found, NULL) == FIDIUS_HOST_STATUS_OK;
    ok &= fidius_host_discovery_skipped_count(found) == DEFECTS;
    ok &= fidius_host_discovery_plugin_count(found) == 2; /* BasicCalculator, PartialCalculator */
    fidius_host_discovery_free(found);
    ok &= load_name_is(host, "BasicCalculator", FIDIUS_HOST_STATUS_OK);
    fidius_host_free(host);
    return ok;
}

/* ---- Python plugins that never finish ----------------------------------- */

static const char *python_package(const char *name, const char *source) {
    const char *dir = case_dir(name);
    const char *pkg = at(dir, "pkg");
    mkdir(pkg, 0755);
    write_text(at(pkg, "package.toml"),
               "[package]\nname = \"Hostile\"\nversion = \"1\"\ninterface = \"Calculator\"\n"
               "interface_version = 2\nruntime = \"python\"\n\n[python]\nentry_module = \"plugin\"\n\n[metadata]\n");
    write_text(at(pkg, "plugin.py"), source);
    return pkg;
}

/* A host whose Python deadline is `milliseconds` (scaled; 0: none). */
static fidius_host_t *python_host(uint64_t milliseconds) {
    fidius_host_builder_t *b = fidius_host_builder_new();
    setup(fidius_host_builder_set_python_deadline_ms(b, milliseconds * scale, NULL));
    return build(b);
}

static int python_import_is(const char *name, const char *source, uint64_t deadline_ms, fidius_host_status want) {
    const char *pkg = python_package(name, source);
    fidius_host_load_options_t *o = options_with("interfaces/calculator.toml");
    fidius_host_t *host = python_host(deadline_ms);
    int ok = load_path_is(host, pkg, o, want);
    fidius_host_load_options_free(o);
    fidius_host_free(host);
    return ok;
}

static int py_import_loop(void) {
    return python_import_is("py_loop", "while True:\n    pass\n", 300, FIDIUS_HOST_STATUS_TIMEOUT);
}
static int py_import_catching_loop(void) {
    return python_import_is("py_catch",
                            "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass\n",
                            300, FIDIUS_HOST_STATUS_TIMEOUT);
}
static int py_import_sleep(void) {
    return python_import_is("py_sleep", "import time\ntime.sleep(3600)\n", 300, FIDIUS_HOST_STATUS_TIMEOUT);
}
static int py_import_from_sleep(void) {
    return python_import_is("py_from_sleep", "from time import sleep\nsleep(1e9)\n", 300, FIDIUS_HOST_STATUS_TIMEOUT);
}
/* With no deadline at all: the capped recursion limit is what ends it. */
static int py_import_recursion(void) {
    return python_import_is("py_recursion",
                            "import sys\nsys.setrecursionlimit(10**8)\ndef f(n):\n    return f(n + 1)\nf(0)\n",
                            0, FIDIUS_HOST_STATUS_INVALID_PYTHON_PLUGIN);
}

/* A plugin whose `add` loops and `greet` sleeps: both TIMEOUT, and the
 * plugin still answers `multiply` afterwards. */
static int py_call_deadline(void) {
    const char *pkg = python_package("py_calls",
                                     "import time\n__interface_hash__ = 0x0271E9B7D21D10F1\n"
                                     "def add(a, b):\n    while True:\n        pass\n"
                                     "def greet(name):\n    time.sleep(3600)\n"
                                     "def divide(a, b):\n    return a // b\n"
                                     "def describe(flag, ratio, tags, note):\n    return ''\n"
                                     "def boom():\n    return ''\n"
                                     "def reverse(data):\n    return data[::-1]\n"
                                     "def ping():\n    return None\n"
                                     "def multiply(a, b):\n    return a * b\n");
    fidius_host_load_options_t *o = options_with("interfaces/calculator.toml");
    fidius_host_t *host = python_host(300);
    fidius_host_plugin_t *p = NULL;
    fidius_host_error_t *err = NULL;
    char *json = NULL;
    int ok = expect("load", fidius_host_load_path(host, pkg, NT, NULL, 0, o, &p, &err), &err, FIDIUS_HOST_STATUS_OK);
    ok &= expect("add", fidius_host_plugin_call_json(p, "add", NT, "[1, 2]", NT, &json, NULL, &err), &err, FIDIUS_HOST_STATUS_TIMEOUT);
    ok &= expect("greet", fidius_host_plugin_call_json(p, "greet", NT, "[\"x\"]", NT, &json, NULL, &err), &err, FIDIUS_HOST_STATUS_TIMEOUT);
    ok &= expect("multiply", fidius_host_plugin_call_json(p, "multiply", NT, "[6, 7]", NT, &json, NULL, &err), &err, FIDIUS_HOST_STATUS_OK);
    ok &= json != NULL && strcmp(json, "42") == 0;
    fidius_host_string_free(json);
    fidius_host_plugin_free(p);
    fidius_host_load_options_free(o);
    fidius_host_free(host);
    return ok;
}

/* The limits and deadlines are the caller's to set: a library or package
 * over a small limit is FILE_TOO_LARGE, 0 is refused at build, and the call
 * deadline and the per-load Python deadline bound an import as the Python
 * deadline does. */
static int limits_are_settable(void) {
    fidius_host_builder_t *b = fidius_host_builder_new();
    fidius_host_load_options_t *o = options_with("interfaces/calculator.toml");
    fidius_host_t *host = NULL;
    fidius_host_error_t *err = NULL;
    const char *pkg = python_package("limits", "while True:\n    pass\n");
    int ok;
    setup(fidius_host_builder_set_max_library_size(b, 1000, NULL));
    setup(fidius_host_builder_set_max_package_size(b, 1000, NULL));
    host = build(b);
    ok = load_path_is(host, fixture("plugins/libcalc_plugin.so"), NULL, FIDIUS_HOST_STATUS_FILE_TOO_LARGE);
    ok &= load_path_is(host, fixture("wasm/calc"), o, FIDIUS_HOST_STATUS_FILE_TOO_LARGE);
    fidius_host_free(host);
    b = fidius_host_builder_new();
    ok &= expect("a 0 library limit", fidius_host_builder_set_max_library_size(b, 0, &err), &err,
                 FIDIUS_HOST_STATUS_INVALID_ARGUMENT);
    fidius_host_builder_free(b);
    b = fidius_host_builder_new();
    setup(fidius_host_builder_set_call_deadline_ms(b, 300 * (uint64_t)scale, NULL));
    host = build(b);
    ok &= load_path_is(host, pkg, o, FIDIUS_HOST_STATUS_TIMEOUT);
    fidius_host_free(host);
    host = python_host(0);
    setup(fidius_host_load_options_set_python_deadline_ms(o, 300 * (uint64_t)scale, NULL));
    ok &= load_path_is(host, pkg, o, FIDIUS_HOST_STATUS_TIMEOUT);
    fidius_host_free(host);
    fidius_host_load_options_free(o);
    return ok;
}

/* ---- contract breaks ---------------------------------------------------- */

static int egress_callback_null(void) {
    fidius_host_egress_policy_t *policy = (fidius_host_egress_policy_t *)&policy;
    fidius_host_error_t *err = NULL;
    int ok = expect("egress_policy_callback", fidius_host_egress_policy_new_callback(NULL, NULL, NULL, &policy, &err), &err, FIDIUS_HOST_STATUS_NULL_ARGUMENT);
    return ok && policy == NULL;
}

static int skipped_status_of_wrong_handle(void) {
    fidius_host_builder_t *b = fidius_host_builder_new();
    int ok = fidius_host_discovery_skipped_status((const fidius_host_discovery_t *)(void *)b, 0) == FIDIUS_HOST_STATUS_MISUSE;
    fidius_host_builder_free(b);
    return ok;
}

static int duplicate_variant(void) {
    fidius_host_interface_builder_t *b = NULL;
    fidius_host_error_t *err = NULL;
    int ok = fidius_host_interface_builder_new("I", NT, 1, &b, NULL) == FIDIUS_HOST_STATUS_OK;
    ok &= expect("enum E { A, A }", fidius_host_interface_builder_add_type(b, "enum E { A, A }", NT, &err), &err, FIDIUS_HOST_STATUS_INVALID_INTERFACE);
    fidius_host_interface_builder_free(b);
    return ok;
}

/* The only library with the name was refused for its signature: the
 * refusal is the status of a load by name, as of a load by path. */
static int refused_by_name(void) {
    const char *dir = case_dir("refused_by_name");
    fidius_host_t *host;
    int ok;
    copy_fixture("plugins/libcalc_plugin.so", at(dir, "libcalc_plugin.so"));
    host = signed_host(dir);
    ok = load_name_is(host, "BasicCalculator", FIDIUS_HOST_STATUS_SIGNATURE_REQUIRED);
    ok &= load_name_is(host, "Nobody", FIDIUS_HOST_STATUS_PLUGIN_NOT_FOUND);
    fidius_host_free(host);
    return ok;
}

/* ---- the runner --------------------------------------------------------- */

static const struct {
    const char *name;
    int (*run)(void);
    unsigned seconds;
} cases[] = {
    {"sig_fifo", sig_fifo, 5},
    {"sig_dev_zero", sig_dev_zero, 5},
    {"sig_dir", sig_dir, 5},
    {"sig_sparse_4g", sig_sparse, 5},
    {"sig_proc", sig_proc, 5},
    {"key_fifo", key_fifo, 5},
    {"key_urandom", key_urandom, 5},
    {"key_sparse_4g", key_sparse, 5},
    {"key_proc", key_proc, 5},
    {"interface_fifo", iface_fifo, 5},
    {"interface_dev_zero", iface_zero, 5},
    {"interface_sparse_4g", iface_sparse, 5},
    {"interface_proc", iface_proc, 5},
    {"library_fifo", lib_fifo, 5},
    {"library_dev_zero", lib_zero, 5},
    {"library_sparse_zeros_4g", lib_sparse_zeros, 5},
    {"library_sparse_elf_4g", lib_sparse_elf, 5},
    {"package_component_fifo", pkg_component_fifo, 10},
    {"package_component_dev_zero", pkg_component_zero, 10},
    {"package_manifest_sparse_2g", pkg_manifest_sparse, 10},
    {"package_signed_sig_fifo", pkg_signed_sig_fifo, 10},
    {"package_signed_extra_fifo", pkg_signed_extra_fifo, 10},
    {"package_signed_extra_sparse_4g", pkg_signed_extra_sparse, 10},
    {"package_signed_link_to_device", pkg_signed_extra_link_to_device, 10},
    {"deep_method_signature", deep_method, 10},
    {"deep_type_declaration", deep_type, 10},
    {"deep_signatures_hash", deep_hash, 10},
    {"deep_interface_toml", deep_toml, 10},
    {"huge_plugin_name", huge_name, 20},
    {"oversized_inputs", oversized_inputs, 20},
    {"corrupt_elf_by_path", corrupt_elf_by_path, 20},
    {"corrupt_elf_neighbours", corrupt_elf_neighbours, 20},
    {"python_import_loop", py_import_loop, 10},
    {"python_import_catching_loop", py_import_catching_loop, 10},
    {"python_import_sleep", py_import_sleep, 10},
    {"python_import_from_sleep", py_import_from_sleep, 10},
    {"python_import_recursion", py_import_recursion, 20},
    {"python_call_deadline", py_call_deadline, 15},
    {"limits_and_deadlines_settable", limits_are_settable, 20},
    {"egress_callback_null", egress_callback_null, 5},
    {"skipped_status_wrong_handle", skipped_status_of_wrong_handle, 5},
    {"duplicate_enum_variant", duplicate_variant, 5},
    {"refused_by_name", refused_by_name, 10},
};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Runs one case in a child; the child is killed past its time bound. */
static int run_case(size_t i) {
    unsigned limit = cases[i].seconds * scale;
    double start = now();
    int status = 0;
    pid_t child;
    fflush(NULL);
    child = fork();
    if (child == 0) {
        alarm(limit);
        _exit(cases[i].run() ? 0 : 1);
    }
    if (child < 0 || waitpid(child, &status, 0) != child) {
        perror("fork");
        return 0;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        printf("ok   %-36s %.2f s\n", cases[i].name, now() - start);
        return 1;
    }
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
        printf("FAIL %-36s did not end within %u s\n", cases[i].name, limit);
    else if (WIFSIGNALED(status))
        printf("FAIL %-36s crashed: %s\n", cases[i].name, strsignal(WTERMSIG(status)));
    else
        printf("FAIL %-36s exit %d\n", cases[i].name, WEXITSTATUS(status));
    return 0;
}

int main(int argc, char **argv) {
    const char *scale_text = getenv("HOSTILE_TIME_SCALE");
    size_t i;
    int passed = 0, failed = 0;
    char command[512];
    if (scale_text != NULL && atoi(scale_text) > 0)
        scale = (unsigned)atoi(scale_text);
    fixtures = getenv("FIDIUS_TEST_FIXTURES");
    if (fixtures == NULL) {
        fprintf(stderr, "FIDIUS_TEST_FIXTURES is not set\n");
        return 2;
    }
    snprintf(scratch, sizeof scratch, "%s", "/tmp/fidius-hostile-XXXXXX");
    if (mkdtemp(scratch) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (argc > 1 && strstr(cases[i].name, argv[1]) == NULL)
            continue;
        if (run_case(i))
            passed++;
        else
            failed++;
    }
    snprintf(command, sizeof command, "rm -rf '%s'", scratch);
    if (system(command) != 0)
        fprintf(stderr, "could not remove %s\n", scratch);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
