// OpenBLAS's CBLAS interface (Debian: libopenblas-dev; `make setup` and `.ci/run` install it).
#include <cblas.h>
