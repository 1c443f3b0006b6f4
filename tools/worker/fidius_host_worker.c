/*
 * fidius-host-worker: the process an isolated plugin runs in. libfidius_host
 * starts it (see fidius_host_builder_set_isolation) with a socket on
 * descriptor 3; everything it does is in the library.
 */
#include "fidius_host.h"

int main(void) { return fidius_host_worker_main(); }
