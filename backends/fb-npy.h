/* SPDX-License-Identifier: MIT
 *
 * NumPy .npy files in and out, so that weights, batches and results move
 * between Fusebox and Python. Reads format versions 1.0, 2.0 and 3.0, C and
 * Fortran order (Fortran data is reordered to row-major on load), little- and
 * big-endian data (converted to the host order), and 0-d arrays. Writes
 * version 1.0 (2.0 when the header would not fit), C order, little-endian.
 *
 * Element types and their descr strings:
 *   pred `|b1`; s8 `|i1`, s16 `<i2`, s32 `<i4`, s64 `<i8`;
 *   u8 `|u1`, u16 `<u2`, u32 `<u4`, u64 `<u8`;
 *   f16 `<f2`, f32 `<f4`, f64 `<f8`; c64 `<c8`, c128 `<c16`.
 *
 * bf16: NumPy has no bfloat16 dtype. `np.save` of an ml_dtypes.bfloat16
 * array (what JAX and TensorFlow hand out) writes the descr `<V2`, a
 * two-byte opaque type, and `np.load` gives it back as such; `.view
 * (ml_dtypes.bfloat16)` restores it. Fusebox writes bf16 the same way, as
 * `<V2` holding the raw bits, and reads `<V2`, `|V2` and the descr
 * `bfloat16` (written by scripts that put `str(dtype)` in the header) as
 * bf16. Keeping the bits unchanged means no rounding on a round trip, and a
 * file Fusebox writes loads in Python exactly like one from ml_dtypes.
 *
 * Other element types (sub-byte integers, the f8 family, tokens, tuples) have
 * no agreed .npy form and are refused with FB_ERROR_UNSUPPORTED.
 *
 * Errors read `FILE: message`: FB_ERROR_IO for files that cannot be read or
 * written, FB_ERROR_PARSE for bad magic, a malformed header or data that
 * does not match the header's shape, FB_ERROR_UNSUPPORTED for dtypes.
 */
#pragma once

#include "fb-ir.h"

G_BEGIN_DECLS

typedef enum {
  FB_NPY_SAVE_DEFAULT    = 0,
  FB_NPY_SAVE_FORTRAN    = 1 << 0,   /* column-major data, fortran_order True */
  FB_NPY_SAVE_BIG_ENDIAN = 1 << 1,   /* `>` descr and byte-swapped data */
  FB_NPY_SAVE_VERSION_2  = 1 << 2,   /* a 4-byte header length */
  FB_NPY_SAVE_VERSION_3  = 1 << 3,   /* like 2.0, header in UTF-8 */
} FbNpySaveFlags;

/* Loads an array; the literal and its shape (default layout) live in @arena. */
FbLiteral *fb_npy_load        (FbArena *arena, const char *path, GError **error);
/* The same from bytes in memory; @name stands for the file in errors. */
FbLiteral *fb_npy_load_bytes  (FbArena *arena, const guint8 *data, gsize len,
                               const char *name, GError **error);

gboolean   fb_npy_save        (const char *path, const FbLiteral *lit, GError **error);
gboolean   fb_npy_save_full   (const char *path, const FbLiteral *lit, FbNpySaveFlags flags,
                               GError **error);
/* The file contents, without writing: a GBytes, NULL with an error. */
GBytes    *fb_npy_to_bytes    (const FbLiteral *lit, FbNpySaveFlags flags, const char *name,
                               GError **error);

/* The descr fb_npy_save writes for @type (`<f4`), or NULL when unsupported. */
const char *fb_npy_descr      (FbElemType type);

G_END_DECLS
