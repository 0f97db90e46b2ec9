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
 *
 * It also reads the IDCT size libjpeg chose for a component of a scaled decode
 * (imgfn_jpeg_dct_scaled_size), a field the binding keeps private, so that the planes
 * transcode::ffi hands to jpeg_read_raw_data are checked against what libjpeg will write; and
 * for raw output at a reduced scale gives a subsampled component the IDCT of a full-resolution
 * one (imgfn_jpeg_raw_idct_as): libjpeg scales a subsampled component's IDCT up (8x8 for 4:2:0
 * chroma at 1/2 scale) so that a colour conversion needs no upsampling, but raw output wants
 * each component at its own resolution, which the smaller IDCT gives directly at a fraction of
 * the work.
 *
 * And it lets imgfn's own Huffman decoding (shared/image-ops/src/decode/entropy.rs, through
 * transcode/decode_mcu.rs) stand in for libjpeg's in a single-scan sequential decode
 * (imgfn_jpeg_wrap_start_input_pass, imgfn_jpeg_hook_decode): the same coefficients, up to two
 * codes with their values per table lookup where jdhuff.c decodes a code and then its value.
 */
#include <stddef.h>
#include <stdio.h>
#define JPEG_INTERNALS
#include "jpeglib.h"
#include "jpegcomp.h"

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

int imgfn_jpeg_dct_scaled_size(const struct jpeg_decompress_struct *cinfo, int ci)
{
  if (cinfo == NULL || cinfo->comp_info == NULL || ci < 0 || ci >= cinfo->num_components)
    return -1;
  return cinfo->comp_info[ci]._DCT_scaled_size;
}

/* After jpeg_start_decompress with raw_data_out and before any jpeg_read_raw_data: component
 * ci takes the IDCT size and method of component like (its multiplier table serves both: every
 * method libjpeg-turbo picks for sizes 1, 2, 4 and 8 under JDCT_ISLOW reads the islow table).
 * What reads the size afterwards (jdcoefct.c's output loops, through _DCT_scaled_size and
 * MCU_sample_width) then writes ci's samples at that size.
 * Returns 1 when done, 0 when the decompressor is not in that state. */
int imgfn_jpeg_raw_idct_as(struct jpeg_decompress_struct *cinfo, int ci, int like)
{
  if (cinfo == NULL || cinfo->comp_info == NULL || cinfo->idct == NULL || !cinfo->raw_data_out ||
      cinfo->global_state != DSTATE_RAW_OK || cinfo->output_scanline != 0 ||
      cinfo->dct_method != JDCT_ISLOW || ci < 0 || like < 0 || ci >= cinfo->num_components ||
      like >= cinfo->num_components)
    return 0;
  cinfo->comp_info[ci]._DCT_h_scaled_size = cinfo->comp_info[like]._DCT_h_scaled_size;
  cinfo->comp_info[ci]._DCT_v_scaled_size = cinfo->comp_info[like]._DCT_v_scaled_size;
  /* The coefficient controller places a single-scan file's MCUs by this (jdinput.c sets it
   * at the scan's start, from the size libjpeg chose). */
  cinfo->comp_info[ci].MCU_sample_width =
    cinfo->comp_info[ci].MCU_width * cinfo->comp_info[ci]._DCT_scaled_size;
  cinfo->idct->inverse_DCT[ci] = cinfo->idct->inverse_DCT[like];
  return 1;
}

typedef boolean (*imgfn_decode_mcu)(j_decompress_ptr cinfo, JBLOCKROW *mcu);
typedef void (*imgfn_start_input_pass)(j_decompress_ptr cinfo);

/* Before jpeg_start_decompress or jpeg_read_coefficients: the input controller's
 * start_input_pass becomes `pass` (which calls the one returned, then may hook the entropy
 * decoder: the first scan's decoding is set up by then and nothing of it read). libjpeg calls
 * it through this pointer only for the first scan (jdmaster.c, jdtrans.c); jdinput.c starts
 * later scans directly. Returns the previous one, or NULL (nothing changed). */
imgfn_start_input_pass imgfn_jpeg_wrap_start_input_pass(j_decompress_ptr cinfo,
                                                        imgfn_start_input_pass pass)
{
  imgfn_start_input_pass previous;
  if (cinfo == NULL || cinfo->inputctl == NULL || pass == NULL)
    return NULL;
  previous = cinfo->inputctl->start_input_pass;
  cinfo->inputctl->start_input_pass = pass;
  return previous;
}

/* At the start of the first scan (from the start_input_pass above): swaps the entropy
 * decoder's decode_mcu for `decode`, which must decode exactly as jdhuff.c does, taking its
 * bytes from cinfo->src and leaving cinfo->src past them. Only for a sequential Huffman-coded
 * file in one scan with at most max_blocks blocks per MCU. Fills in for each block of an MCU its
 * component (index in the scan) and its DC and AC tables (after jinit_huff_decoder, which fills
 * a missing table with the standard one), and the restart interval; returns the blocks in an
 * MCU, or 0 (and changes nothing) when the decoder is not in that state. Swaps only when `swap`
 * is nonzero (a first call finds the tables). */
int imgfn_jpeg_hook_decode(j_decompress_ptr cinfo, imgfn_decode_mcu decode, int swap, int max_blocks,
                           int *component, const JHUFF_TBL **dc, const JHUFF_TBL **ac,
                           unsigned int *restart_interval)
{
  int b;
  if (cinfo == NULL || cinfo->entropy == NULL || cinfo->inputctl == NULL || cinfo->src == NULL ||
      cinfo->progressive_mode || cinfo->arith_code || cinfo->inputctl->has_multiple_scans ||
      cinfo->inputctl->eoi_reached || cinfo->input_iMCU_row != 0 || cinfo->unread_marker != 0 ||
      cinfo->entropy->insufficient_data || cinfo->data_precision != 8 ||
      cinfo->comps_in_scan != cinfo->num_components || cinfo->Ss != 0 || cinfo->Se != 63 ||
      cinfo->Ah != 0 || cinfo->Al != 0 || cinfo->blocks_in_MCU > max_blocks ||
      cinfo->blocks_in_MCU <= 0)
    return 0;
  for (b = 0; b < cinfo->blocks_in_MCU; b++) {
    jpeg_component_info *comp = cinfo->cur_comp_info[cinfo->MCU_membership[b]];
    if (comp->dc_tbl_no < 0 || comp->dc_tbl_no >= NUM_HUFF_TBLS || comp->ac_tbl_no < 0 ||
        comp->ac_tbl_no >= NUM_HUFF_TBLS || cinfo->dc_huff_tbl_ptrs[comp->dc_tbl_no] == NULL ||
        cinfo->ac_huff_tbl_ptrs[comp->ac_tbl_no] == NULL)
      return 0;
  }
  for (b = 0; b < cinfo->blocks_in_MCU; b++) {
    jpeg_component_info *comp = cinfo->cur_comp_info[cinfo->MCU_membership[b]];
    component[b] = cinfo->MCU_membership[b];
    dc[b] = cinfo->dc_huff_tbl_ptrs[comp->dc_tbl_no];
    ac[b] = cinfo->ac_huff_tbl_ptrs[comp->ac_tbl_no];
  }
  *restart_interval = cinfo->restart_interval;
  if (swap)
    cinfo->entropy->decode_mcu = decode;
  return cinfo->blocks_in_MCU;
}
