/* h5util.h: HDF5 helpers shared by the store and the results log (internal).
 *
 * HDF5 prints its error stack by default; a library must not, so every entry point
 * that calls HDF5 first turns automatic printing off (cfx__h5_quiet) and reports
 * failures with cfx__h5_fail, which reads the innermost message of the stack. */
#ifndef CFX_H5UTIL_H
#define CFX_H5UTIL_H

#include <hdf5.h>

/* Turn off HDF5's automatic error printing for this thread. */
void cfx__h5_quiet(void);
/* cfx__fail(code, "PATH: WHAT: <HDF5's innermost message>") and clear the stack. */
int cfx__h5_fail(int code, const char *what, const char *path);
/* H5Fopen failed on a file with an HDF5 signature: CFX_EFORMAT "PATH: the NOUN is
 * truncated: N bytes, of the M bytes its HDF5 header records; REMEDY" when the superblock
 * says so, else "PATH: cannot open the NOUN: the HDF5 file is damaged (...); REMEDY". */
int cfx__h5_open_fail(const char *path, const char *noun, const char *remedy);
/* Writing PATH (a NOUN: "store", "results file") failed, as cfx_last_error() says, with
 * errno err (0: unknown): CFX_EIO "PATH: cannot write the NOUN: WHY (the last error); KEPT
 * (or "nothing was written" when PATH does not exist): what to do, and run again", WHY the
 * system's reason (a full filesystem is found by statvfs when errno no longer says). */
int cfx__h5_write_fail(const char *path, const char *noun, int err, const char *kept);
/* A new variable-length UTF-8 string type (H5Tclose it). */
hid_t cfx__h5_string_type(void);
/* A scalar string attribute (fixed or variable length) as a new malloc'd string, or
 * NULL when it is not a string. */
char *cfx__h5_read_string_attr(hid_t attr);
/* Create the scalar variable-length string attribute key = value on loc; 0 or -1. */
int cfx__h5_write_string_attr(hid_t loc, const char *key, const char *value);
/* The root attributes of a cfx file: cfx_format must be `format` (else CFX_EFORMAT
 * "PATH: not a cfx NOUN (root attribute cfx_format is ..., expected "FORMAT")") and
 * cfx_version must be `version` (else CFX_EVERSION "PATH: FORMAT format version V, but
 * this cfx (X) reads version N only" followed by hint). */
int cfx__h5_check_header(hid_t f, const char *path, const char *format, const char *noun, int version,
                         const char *hint);

#endif
