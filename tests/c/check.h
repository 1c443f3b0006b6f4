/*
 * What every C test file shares: CHECK, the fixture directory and a main
 * that reads it from $FIDIUS_TEST_FIXTURES and reports the counts.
 */
#ifndef FIDIUS_HOST_TEST_CHECK_H
#define FIDIUS_HOST_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static int passed, failed;
static char fixtures[4096];

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (cond) {                                                              \
            passed++;                                                            \
        } else {                                                                 \
            failed++;                                                            \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                        \
    } while (0)

#define NT FIDIUS_HOST_NUL_TERMINATED

/* `relative` inside the fixture directory (one static buffer: use at once). */
static const char *path_of(const char *relative) {
    static char buf[8192];
    snprintf(buf, sizeof buf, "%s/%s", fixtures, relative);
    return buf;
}

/* Runs the file's tests (`run_tests`) against $FIDIUS_TEST_FIXTURES. */
static int check_main(void (*run_tests)(void)) {
    const char *dir = getenv("FIDIUS_TEST_FIXTURES");
    if (dir == NULL) {
        fprintf(stderr, "FIDIUS_TEST_FIXTURES is not set (run via make c-test)\n");
        return 2;
    }
    snprintf(fixtures, sizeof fixtures, "%s", dir);
    run_tests();
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}

#endif
