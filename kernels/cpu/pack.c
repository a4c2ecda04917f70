/*
 * Weight matrices repacked for the matrix-vector product of decoding.
 *
 * A row-by-row dot product spends most of its instructions on what is not
 * the multiply: per 32-element block it loads the activations, converts
 * two half-precision scales and sums a vector across its lanes, and all of
 * that again for the next row. With the rows of a group of eight
 * interleaved block by block, one 32-byte vector holds 4 consecutive
 * elements of each of the 8 rows; a u8 x s8 dot of 4 against the broadcast
 * 4 activations leaves row r's partial sum in lane r. The activation loads,
 * the activation scale and the final reduction then serve eight rows, the
 * eight rows' scales load as one vector, and no horizontal sum remains.
 *
 * The packed copy holds the same bytes as the rows (the K-quants' packed
 * 6-bit scales and mins excepted, unpacked to a byte each), moved: see the
 * kt_pblock_* structs in quant.h for where each element goes. Packing is
 * a permutation, done here in plain C by move_group(), which also undoes
 * it for kt_mat_unpack_group. Rows past the last whole group of eight are
 * not packed; kt_matmul reads them from the original rows.
 *
 * Packed kernels exist for the vector ISAs (pack_avx2.c, compiled again
 * with VNNI as pack_vnni.c) and the types of the usual model files: q4_0,
 * q4_1, q5_0, q8_0, q4_K and q6_K. Their reference is the row kernel of
 * the same type (tests/test_quant.c compares them).
 */
#include <errno.h>
#include <string.h>

#include "kernels/cpu/quant.h"

/* Bytes of one packed block column (8 rows), 0 for a type without one. */
static size_t pblock_bytes(enum kt_type t)
{
	switch (t) {
	case KT_Q4_0:
		return sizeof(struct kt_pblock_q4_0);
	case KT_Q4_1:
		return sizeof(struct kt_pblock_q4_1);
	case KT_Q5_0:
		return sizeof(struct kt_pblock_q5_0);
	case KT_Q8_0:
		return sizeof(struct kt_pblock_q8_0);
	case KT_Q4_K:
		return sizeof(struct kt_pblock_q4_K);
	case KT_Q6_K:
		return sizeof(struct kt_pblock_q6_K);
	default:
		return 0;
	}
}

kt_pdot_fn kt_pdot(enum kt_isa isa, enum kt_type t)
{
	if (isa == KT_ISA_AVX512VNNI && kt_cpu_has_vnni())
		return kt_pdot_vnni(t);
	if ((isa == KT_ISA_AVX2 || isa == KT_ISA_AVX512VNNI) && kt_cpu_has_avx2())
		return kt_pdot_avx2(t);
	return NULL;
}

int kt_pdot_needs_xsum(enum kt_type t)
{
	return t == KT_Q4_0 || t == KT_Q5_0;
}

size_t kt_mat_packed_bytes(const struct kt_mat *w)
{
	const size_t pb = pblock_bytes(w->type);
	if (!pb || w->rows < KT_PACK_ROWS || w->cols % kt_block_elems(w->type) ||
	    !kt_pdot(kt_cpu_isa(), w->type))
		return 0;
	return (size_t)(w->rows / KT_PACK_ROWS) * (size_t)(w->cols / kt_block_elems(w->type)) * pb;
}

/* Copies n bytes between a row's block and its packed block: to the packed
 * one when pack, back otherwise. */
static inline void mv(void *pk, void *row, size_t n, int pack)
{
	if (pack)
		memcpy(pk, row, n);
	else
		memcpy(row, pk, n);
}

/* One block column: the blocks rb[r] (r < 8) of the group's rows <-> the
 * packed block pb. */
static void move_block(enum kt_type t, void *pb, uint8_t *const rb[8], int pack)
{
	for (int r = 0; r < 8; r++) {
		switch (t) {
		case KT_Q4_0: {
			struct kt_pblock_q4_0 *p = pb;
			struct kt_block_q4_0 *b = (void *)rb[r];
			mv(&p->d[r], &b->d, 2, pack);
			for (int v = 0; v < 4; v++)
				mv(&p->qs[32 * v + 4 * r], &b->qs[4 * v], 4, pack);
			break;
		}
		case KT_Q4_1: {
			struct kt_pblock_q4_1 *p = pb;
			struct kt_block_q4_1 *b = (void *)rb[r];
			mv(&p->d[r], &b->d, 2, pack);
			mv(&p->m[r], &b->m, 2, pack);
			for (int v = 0; v < 4; v++)
				mv(&p->qs[32 * v + 4 * r], &b->qs[4 * v], 4, pack);
			break;
		}
		case KT_Q5_0: {
			struct kt_pblock_q5_0 *p = pb;
			struct kt_block_q5_0 *b = (void *)rb[r];
			mv(&p->d[r], &b->d, 2, pack);
			for (int v = 0; v < 4; v++)
				mv(&p->qs[32 * v + 4 * r], &b->qs[4 * v], 4, pack);
			/* 4 bits of the row's qh to each of the 8 group masks */
			uint32_t qh;
			memcpy(&qh, b->qh, 4);
			if (pack && r == 0)
				memset(p->qh, 0, sizeof p->qh);
			if (!pack)
				qh = 0;
			for (int u = 0; u < 8; u++) {
				if (pack)
					p->qh[u] |= ((qh >> (4 * u)) & 0xfu) << (4 * r);
				else
					qh |= ((p->qh[u] >> (4 * r)) & 0xfu) << (4 * u);
			}
			if (!pack)
				memcpy(b->qh, &qh, 4);
			break;
		}
		case KT_Q8_0: {
			struct kt_pblock_q8_0 *p = pb;
			struct kt_block_q8_0 *b = (void *)rb[r];
			mv(&p->d[r], &b->d, 2, pack);
			for (int u = 0; u < 8; u++)
				mv(&p->qs[32 * u + 4 * r], &b->qs[4 * u], 4, pack);
			break;
		}
		case KT_Q4_K: {
			struct kt_pblock_q4_K *p = pb;
			struct kt_block_q4_K *b = (void *)rb[r];
			mv(&p->d[r], &b->d, 2, pack);
			mv(&p->dmin[r], &b->dmin, 2, pack);
			if (pack) {
				for (int j = 0; j < 8; j++)
					kt_scale_min_k4(j, b->scales, &p->sc[j][r], &p->m[j][r]);
			} else {
				/* the 6-bit fields back into the 12 bytes */
				memset(b->scales, 0, 12);
				for (int j = 0; j < 8; j++) {
					const uint8_t s = p->sc[j][r], m = p->m[j][r];
					if (j < 4) {
						b->scales[j] |= s & 63;
						b->scales[j + 4] |= m & 63;
					} else {
						b->scales[j + 4] = (uint8_t)((s & 0xf) | (m & 0xf) << 4);
						b->scales[j - 4] |= (uint8_t)((s >> 4) << 6);
						b->scales[j] |= (uint8_t)((m >> 4) << 6);
					}
				}
			}
			for (int c = 0; c < 4; c++)
				for (int v = 0; v < 8; v++)
					mv(&p->qs[256 * c + 32 * v + 4 * r], &b->qs[32 * c + 4 * v], 4, pack);
			break;
		}
		case KT_Q6_K: {
			struct kt_pblock_q6_K *p = pb;
			struct kt_block_q6_K *b = (void *)rb[r];
			mv(&p->d[r], &b->d, 2, pack);
			for (int j = 0; j < 16; j++)
				mv(&p->sc[j][r], &b->scales[j], 1, pack);
			for (int h = 0; h < 2; h++) {
				for (int v = 0; v < 16; v++)
					mv(&p->ql[512 * h + 32 * v + 4 * r], &b->ql[64 * h + 4 * v], 4, pack);
				for (int w = 0; w < 8; w++)
					mv(&p->qh[256 * h + 32 * w + 4 * r], &b->qh[32 * h + 4 * w], 4, pack);
			}
			break;
		}
		default:
			break;
		}
	}
}

/* Group g (rows 8g..8g+7) of w: rows (row-major, kt_row_bytes apart) <->
 * its packed block columns at pk. */
static void move_group(const struct kt_mat *w, uint8_t *rows, uint8_t *pk, int pack)
{
	const size_t rb = kt_row_bytes(w->type, w->cols), bb = kt_block_bytes(w->type);
	const size_t pb = pblock_bytes(w->type);
	const int64_t nblk = w->cols / kt_block_elems(w->type);
	for (int64_t i = 0; i < nblk; i++) {
		uint8_t *src[8];
		for (int r = 0; r < 8; r++)
			src[r] = rows + (size_t)r * rb + (size_t)i * bb;
		move_block(w->type, pk + (size_t)i * pb, src, pack);
	}
}

void kt_mat_pack_groups(const struct kt_mat *w, void *dst, int64_t g0, int64_t g1)
{
	const size_t rb = kt_row_bytes(w->type, w->cols);
	const size_t gb = kt_mat_packed_bytes(w) / (size_t)(w->rows / KT_PACK_ROWS);
	for (int64_t g = g0; g < g1; g++)
		move_group(w, (uint8_t *)w->data + (size_t)g * KT_PACK_ROWS * rb,
			   (uint8_t *)dst + (size_t)g * gb, 1);
}

int kt_mat_pack(struct kt_mat *w, void *dst)
{
	w->packed = NULL;
	if (!kt_mat_packed_bytes(w))
		return -ENOTSUP;
	kt_mat_pack_groups(w, dst, 0, w->rows / KT_PACK_ROWS);
	w->packed = dst;
	return 0;
}

void kt_mat_unpack_group(const struct kt_mat *w, int64_t r0, void *rows)
{
	const size_t gb = kt_mat_packed_bytes(w) / (size_t)(w->rows / KT_PACK_ROWS);
	move_group(w, rows, (uint8_t *)w->packed + (size_t)(r0 / KT_PACK_ROWS) * gb, 0);
}
