/*
 * imgfn: replaces libjpeg's Huffman statistics pass (encode_mcu_gather, a scalar loop over
 * every coefficient: a quarter of a 12 MP JPEG encode) with imgfn's own count
 * (shared/image-ops/src/transcode/huffman.rs), by swapping the entropy encoder's methods for
 * the first pass. The entropy encoder is internal to libjpeg (jpegint.h), which the Rust binding
 * does not expose: this file is the one place that reaches into it.
 *
 * Call it right after jpeg_start_compress, which has prepared the first pass. It takes effect
 * only for what it was written for (one baseline Huffman scan, optimised tables, no trellis, no
 * restart interval, the statistics pass about to run) and returns the blocks in an MCU, after
 * filling in each block's component and tables; otherwise it changes nothing and returns 0.
 */
#include <stddef.h>
#include <stdio.h>
#define JPEG_INTERNALS
#include "jpeglib.h"

typedef boolean (*imgfn_encode_mcu)(j_compress_ptr cinfo, JBLOCKROW *mcu);
typedef void (*imgfn_finish_pass)(j_compress_ptr cinfo);

int imgfn_jpeg_hook_gather(j_compress_ptr cinfo, imgfn_encode_mcu encode, imgfn_finish_pass finish,
                           int *component, int *dc_table, int *ac_table, int max_blocks)
{
  int b;
  if (cinfo->entropy == NULL || cinfo->master == NULL || cinfo->progressive_mode ||
      cinfo->arith_code || !cinfo->optimize_coding || cinfo->master->trellis_quant ||
      cinfo->master->optimize_scans || cinfo->num_scans != 1 || cinfo->restart_interval != 0 ||
      cinfo->restart_in_rows != 0 || cinfo->comps_in_scan != cinfo->num_components ||
      cinfo->blocks_in_MCU > max_blocks || cinfo->blocks_in_MCU <= 0)
    return 0;
  for (b = 0; b < cinfo->blocks_in_MCU; b++) {
    jpeg_component_info *comp = cinfo->cur_comp_info[cinfo->MCU_membership[b]];
    component[b] = cinfo->MCU_membership[b];
    dc_table[b] = comp->dc_tbl_no;
    ac_table[b] = comp->ac_tbl_no;
  }
  cinfo->entropy->encode_mcu = encode;
  cinfo->entropy->finish_pass = finish;
  return cinfo->blocks_in_MCU;
}
