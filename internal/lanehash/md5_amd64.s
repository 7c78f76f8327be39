//go:build amd64 && !purego

#include "textflag.h"

// 16-lane MD5 block function for AVX-512.
//
// Each of the 16 dword lanes of a ZMM register belongs to one message, so
// one instruction advances all 16 messages by the same step. Register use:
//
//	Z0-Z4    the working variables a, b, c, d of the 16 lanes, plus one
//	         register that takes the next step's a (see STEP)
//	Z8-Z23   before the transpose: row i (Z8+i) is lane i's 64-byte block;
//	         after it: Z8+w holds message word w of every lane
//	Z24-Z27  temporaries (transpose, M+K); Z5-Z7 are unused
//	Z28-Z31  chaining value a, b, c, d; loaded from and stored to state
//	K1       busy lanes: bit i set when ptrs[i] is not nil
//	DI       *[4][16]uint32 state: state[w][i] is word w of lane i
//	SI       *[16]*byte ptrs: where each lane's blocks start
//	CX       blocks left
//	DX       offset of the current block from every lane's pointer
//	R9       address of the step constants md5K
//
// Message words are loaded row by row (one 64-byte load per busy lane) and
// transposed 16x16 in registers: dword-pair and qword-pair unpacks within
// 128-bit chunks, then two stages of 128-bit chunk shuffles, 64 shuffles
// per block. (VPGATHERQD, 32 gathers of 8 dwords per block, measured 3.7x
// slower per block on this kernel's development machine, a Xeon @ 2.5GHz.)
// Idle lanes load nothing and compute on whatever their registers hold;
// the masked feed-forward at the end of the block leaves their chaining
// value as it was.
//
// One MD5 step is a = b + ((a + f(b, c, d) + M[g] + K[i]) <<< s), and the
// next step's a is this step's d. STEP adds the next step's M+K to d into
// a spare register before VPTERNLOGD overwrites d with f, so a step takes
// six instructions and no register copy; on the dependency chain are only
// VPTERNLOGD, VPADDD, VPROLD, VPADDD. The five registers Z0-Z4 rotate
// through the roles a, b, c, d and spare from step to step.

// VPTERNLOGD truth tables, with d in the destination, c as the second and
// b as the third operand (bit index 4*d + 2*c + b).
#define IMM_F $0xd8 // (b AND c) OR (NOT b AND d)
#define IMM_G $0xac // (b AND d) OR (c AND NOT d)
#define IMM_H $0x96 // b XOR c XOR d
#define IMM_I $0x63 // c XOR (b OR NOT d)

// STEP performs one MD5 step on all 16 lanes, with a already holding
// a + M[g] + K[i]: a = b + ((a + f(b, c, d)) <<< s), where f is the truth
// table imm. It also prepares the next step: t = d + mnext + K[knext/4],
// where mnext is the next step's message word and knext the byte offset of
// its constant in md5K. d is overwritten. The next step's a, b, c, d are
// t, a, b, c, and d is its spare.
#define STEP(a, b, c, d, t, mnext, knext, s, imm) \
	VPADDD.BCST knext(R9), mnext, Z24; \
	VPADDD      Z24, d, t;             \
	VPTERNLOGD  imm, b, c, d;          \
	VPADDD      d, a, a;               \
	VPROLD      $s, a, a;              \
	VPADDD      b, a, a

#define STEP_F(a, b, c, d, t, m, k, s) STEP(a, b, c, d, t, m, k, s, IMM_F)
#define STEP_G(a, b, c, d, t, m, k, s) STEP(a, b, c, d, t, m, k, s, IMM_G)
#define STEP_H(a, b, c, d, t, m, k, s) STEP(a, b, c, d, t, m, k, s, IMM_H)
#define STEP_I(a, b, c, d, t, m, k, s) STEP(a, b, c, d, t, m, k, s, IMM_I)

// LAST_STEP_I is step 63: as STEP with I, but d survives (it is the
// block's new a) and there is no next step to prepare.
#define LAST_STEP_I(a, b, c, d, s) \
	VMOVDQA32  d, Z25;          \
	VPTERNLOGD IMM_I, b, c, Z25; \
	VPADDD     Z25, a, a;       \
	VPROLD     $s, a, a;        \
	VPADDD     b, a, a

// LOAD_ROW loads the current block of the lane whose pointer is at byte
// offset off of ptrs into row, and nothing if that lane is idle.
#define LOAD_ROW(off, row, skip) \
	MOVQ      off(SI), R8;        \
	TESTQ     R8, R8;             \
	JZ        skip;               \
	VMOVDQU32 (R8)(DX*1), row;    \
skip:

// TRANSPOSE_4X4 transposes the 4x4 dword matrix in each 128-bit chunk of
// rows r0-r3: afterwards chunk j of rk holds word 4j+k of the four rows.
#define TRANSPOSE_4X4(r0, r1, r2, r3) \
	VPUNPCKLDQ  r1, r0, Z24;  \
	VPUNPCKHDQ  r1, r0, Z25;  \
	VPUNPCKLDQ  r3, r2, Z26;  \
	VPUNPCKHDQ  r3, r2, Z27;  \
	VPUNPCKLQDQ Z26, Z24, r0; \
	VPUNPCKHQDQ Z26, Z24, r1; \
	VPUNPCKLQDQ Z27, Z25, r2; \
	VPUNPCKHQDQ Z27, Z25, r3

// TRANSPOSE_CHUNKS transposes the 4x4 matrix of 128-bit chunks held in
// s0-s3: afterwards chunk j of sk is what chunk k of sj was.
#define TRANSPOSE_CHUNKS(s0, s1, s2, s3) \
	VSHUFI32X4 $0x44, s1, s0, Z24;  \
	VSHUFI32X4 $0xee, s1, s0, Z25;  \
	VSHUFI32X4 $0x44, s3, s2, Z26;  \
	VSHUFI32X4 $0xee, s3, s2, Z27;  \
	VSHUFI32X4 $0x88, Z26, Z24, s0; \
	VSHUFI32X4 $0xdd, Z26, Z24, s1; \
	VSHUFI32X4 $0x88, Z27, Z25, s2; \
	VSHUFI32X4 $0xdd, Z27, Z25, s3

// func md5BlocksAVX512(state *[4][16]uint32, ptrs *[16]*byte, blocks int)
TEXT ·md5BlocksAVX512(SB), NOSPLIT, $0-24
	MOVQ state+0(FP), DI
	MOVQ ptrs+8(FP), SI
	MOVQ blocks+16(FP), CX

	// K1 = busy lanes, from the non-nil pointers.
	XORL BX, BX
	MOVQ $15, R10

mask:
	SHLL   $1, BX
	XORL   R11, R11
	CMPQ   (SI)(R10*8), $0
	SETNE  R11B
	ORL    R11, BX
	DECQ   R10
	JGE    mask
	TESTL  BX, BX
	JZ     done
	TESTQ  CX, CX
	JLE    done
	KMOVW  BX, K1

	LEAQ      md5K<>(SB), R9
	VMOVDQU32 (DI), Z28
	VMOVDQU32 64(DI), Z29
	VMOVDQU32 128(DI), Z30
	VMOVDQU32 192(DI), Z31
	XORQ      DX, DX

block:
	LOAD_ROW(0x00, Z8, row0)
	LOAD_ROW(0x08, Z9, row1)
	LOAD_ROW(0x10, Z10, row2)
	LOAD_ROW(0x18, Z11, row3)
	LOAD_ROW(0x20, Z12, row4)
	LOAD_ROW(0x28, Z13, row5)
	LOAD_ROW(0x30, Z14, row6)
	LOAD_ROW(0x38, Z15, row7)
	LOAD_ROW(0x40, Z16, row8)
	LOAD_ROW(0x48, Z17, row9)
	LOAD_ROW(0x50, Z18, row10)
	LOAD_ROW(0x58, Z19, row11)
	LOAD_ROW(0x60, Z20, row12)
	LOAD_ROW(0x68, Z21, row13)
	LOAD_ROW(0x70, Z22, row14)
	LOAD_ROW(0x78, Z23, row15)

	// Rows 4a..4a+3 are transposed within chunks: Z8+4a+k then holds, in
	// chunk j, word 4j+k of lanes 4a..4a+3.
	TRANSPOSE_4X4(Z8, Z9, Z10, Z11)
	TRANSPOSE_4X4(Z12, Z13, Z14, Z15)
	TRANSPOSE_4X4(Z16, Z17, Z18, Z19)
	TRANSPOSE_4X4(Z20, Z21, Z22, Z23)

	// Chunk j of Z8+4a+k moves to chunk a of Z8+4j+k: Z8+w holds word w
	// of lanes 0-15.
	TRANSPOSE_CHUNKS(Z8, Z12, Z16, Z20)
	TRANSPOSE_CHUNKS(Z9, Z13, Z17, Z21)
	TRANSPOSE_CHUNKS(Z10, Z14, Z18, Z22)
	TRANSPOSE_CHUNKS(Z11, Z15, Z19, Z23)


	// Step 0's a is a + M[0] + K[0].
	VPADDD.BCST 0(R9), Z8, Z24
	VPADDD      Z24, Z28, Z0
	VMOVDQA32   Z29, Z1
	VMOVDQA32   Z30, Z2
	VMOVDQA32   Z31, Z3

	// Round 1, steps 0-15: F(b,c,d) = (b AND c) OR (NOT b AND d), message word i.
	STEP_F(Z0, Z1, Z2, Z3, Z4, Z9, 0x04, 7)
	STEP_F(Z4, Z0, Z1, Z2, Z3, Z10, 0x08, 12)
	STEP_F(Z3, Z4, Z0, Z1, Z2, Z11, 0x0c, 17)
	STEP_F(Z2, Z3, Z4, Z0, Z1, Z12, 0x10, 22)
	STEP_F(Z1, Z2, Z3, Z4, Z0, Z13, 0x14, 7)
	STEP_F(Z0, Z1, Z2, Z3, Z4, Z14, 0x18, 12)
	STEP_F(Z4, Z0, Z1, Z2, Z3, Z15, 0x1c, 17)
	STEP_F(Z3, Z4, Z0, Z1, Z2, Z16, 0x20, 22)
	STEP_F(Z2, Z3, Z4, Z0, Z1, Z17, 0x24, 7)
	STEP_F(Z1, Z2, Z3, Z4, Z0, Z18, 0x28, 12)
	STEP_F(Z0, Z1, Z2, Z3, Z4, Z19, 0x2c, 17)
	STEP_F(Z4, Z0, Z1, Z2, Z3, Z20, 0x30, 22)
	STEP_F(Z3, Z4, Z0, Z1, Z2, Z21, 0x34, 7)
	STEP_F(Z2, Z3, Z4, Z0, Z1, Z22, 0x38, 12)
	STEP_F(Z1, Z2, Z3, Z4, Z0, Z23, 0x3c, 17)
	STEP_F(Z0, Z1, Z2, Z3, Z4, Z9, 0x40, 22)

	// Round 2, steps 16-31: G(b,c,d) = (b AND d) OR (c AND NOT d), message word (5i+1) mod 16.
	STEP_G(Z4, Z0, Z1, Z2, Z3, Z14, 0x44, 5)
	STEP_G(Z3, Z4, Z0, Z1, Z2, Z19, 0x48, 9)
	STEP_G(Z2, Z3, Z4, Z0, Z1, Z8, 0x4c, 14)
	STEP_G(Z1, Z2, Z3, Z4, Z0, Z13, 0x50, 20)
	STEP_G(Z0, Z1, Z2, Z3, Z4, Z18, 0x54, 5)
	STEP_G(Z4, Z0, Z1, Z2, Z3, Z23, 0x58, 9)
	STEP_G(Z3, Z4, Z0, Z1, Z2, Z12, 0x5c, 14)
	STEP_G(Z2, Z3, Z4, Z0, Z1, Z17, 0x60, 20)
	STEP_G(Z1, Z2, Z3, Z4, Z0, Z22, 0x64, 5)
	STEP_G(Z0, Z1, Z2, Z3, Z4, Z11, 0x68, 9)
	STEP_G(Z4, Z0, Z1, Z2, Z3, Z16, 0x6c, 14)
	STEP_G(Z3, Z4, Z0, Z1, Z2, Z21, 0x70, 20)
	STEP_G(Z2, Z3, Z4, Z0, Z1, Z10, 0x74, 5)
	STEP_G(Z1, Z2, Z3, Z4, Z0, Z15, 0x78, 9)
	STEP_G(Z0, Z1, Z2, Z3, Z4, Z20, 0x7c, 14)
	STEP_G(Z4, Z0, Z1, Z2, Z3, Z13, 0x80, 20)

	// Round 3, steps 32-47: H(b,c,d) = b XOR c XOR d, message word (3i+5) mod 16.
	STEP_H(Z3, Z4, Z0, Z1, Z2, Z16, 0x84, 4)
	STEP_H(Z2, Z3, Z4, Z0, Z1, Z19, 0x88, 11)
	STEP_H(Z1, Z2, Z3, Z4, Z0, Z22, 0x8c, 16)
	STEP_H(Z0, Z1, Z2, Z3, Z4, Z9, 0x90, 23)
	STEP_H(Z4, Z0, Z1, Z2, Z3, Z12, 0x94, 4)
	STEP_H(Z3, Z4, Z0, Z1, Z2, Z15, 0x98, 11)
	STEP_H(Z2, Z3, Z4, Z0, Z1, Z18, 0x9c, 16)
	STEP_H(Z1, Z2, Z3, Z4, Z0, Z21, 0xa0, 23)
	STEP_H(Z0, Z1, Z2, Z3, Z4, Z8, 0xa4, 4)
	STEP_H(Z4, Z0, Z1, Z2, Z3, Z11, 0xa8, 11)
	STEP_H(Z3, Z4, Z0, Z1, Z2, Z14, 0xac, 16)
	STEP_H(Z2, Z3, Z4, Z0, Z1, Z17, 0xb0, 23)
	STEP_H(Z1, Z2, Z3, Z4, Z0, Z20, 0xb4, 4)
	STEP_H(Z0, Z1, Z2, Z3, Z4, Z23, 0xb8, 11)
	STEP_H(Z4, Z0, Z1, Z2, Z3, Z10, 0xbc, 16)
	STEP_H(Z3, Z4, Z0, Z1, Z2, Z8, 0xc0, 23)

	// Round 4, steps 48-63: I(b,c,d) = c XOR (b OR NOT d), message word 7i mod 16.
	STEP_I(Z2, Z3, Z4, Z0, Z1, Z15, 0xc4, 6)
	STEP_I(Z1, Z2, Z3, Z4, Z0, Z22, 0xc8, 10)
	STEP_I(Z0, Z1, Z2, Z3, Z4, Z13, 0xcc, 15)
	STEP_I(Z4, Z0, Z1, Z2, Z3, Z20, 0xd0, 21)
	STEP_I(Z3, Z4, Z0, Z1, Z2, Z11, 0xd4, 6)
	STEP_I(Z2, Z3, Z4, Z0, Z1, Z18, 0xd8, 10)
	STEP_I(Z1, Z2, Z3, Z4, Z0, Z9, 0xdc, 15)
	STEP_I(Z0, Z1, Z2, Z3, Z4, Z16, 0xe0, 21)
	STEP_I(Z4, Z0, Z1, Z2, Z3, Z23, 0xe4, 6)
	STEP_I(Z3, Z4, Z0, Z1, Z2, Z14, 0xe8, 10)
	STEP_I(Z2, Z3, Z4, Z0, Z1, Z21, 0xec, 15)
	STEP_I(Z1, Z2, Z3, Z4, Z0, Z12, 0xf0, 21)
	STEP_I(Z0, Z1, Z2, Z3, Z4, Z19, 0xf4, 6)
	STEP_I(Z4, Z0, Z1, Z2, Z3, Z10, 0xf8, 10)
	STEP_I(Z3, Z4, Z0, Z1, Z2, Z17, 0xfc, 15)
	LAST_STEP_I(Z2, Z3, Z4, Z0, 21)

	// The block's a, b, c, d are now in Z0, Z2, Z3, Z4.

	// Feed-forward into the chaining value of the busy lanes only.
	VPADDD Z0, Z28, K1, Z28
	VPADDD Z2, Z29, K1, Z29
	VPADDD Z3, Z30, K1, Z30
	VPADDD Z4, Z31, K1, Z31

	ADDQ $64, DX
	DECQ CX
	JNZ  block

	VMOVDQU32 Z28, (DI)
	VMOVDQU32 Z29, 64(DI)
	VMOVDQU32 Z30, 128(DI)
	VMOVDQU32 Z31, 192(DI)
	VZEROUPPER

done:
	RET

// md5K holds the 64 step constants K[i] = floor(abs(sin(i+1)) * 2^32).
DATA md5K<>+0x00(SB)/4, $0xd76aa478
DATA md5K<>+0x04(SB)/4, $0xe8c7b756
DATA md5K<>+0x08(SB)/4, $0x242070db
DATA md5K<>+0x0c(SB)/4, $0xc1bdceee
DATA md5K<>+0x10(SB)/4, $0xf57c0faf
DATA md5K<>+0x14(SB)/4, $0x4787c62a
DATA md5K<>+0x18(SB)/4, $0xa8304613
DATA md5K<>+0x1c(SB)/4, $0xfd469501
DATA md5K<>+0x20(SB)/4, $0x698098d8
DATA md5K<>+0x24(SB)/4, $0x8b44f7af
DATA md5K<>+0x28(SB)/4, $0xffff5bb1
DATA md5K<>+0x2c(SB)/4, $0x895cd7be
DATA md5K<>+0x30(SB)/4, $0x6b901122
DATA md5K<>+0x34(SB)/4, $0xfd987193
DATA md5K<>+0x38(SB)/4, $0xa679438e
DATA md5K<>+0x3c(SB)/4, $0x49b40821
DATA md5K<>+0x40(SB)/4, $0xf61e2562
DATA md5K<>+0x44(SB)/4, $0xc040b340
DATA md5K<>+0x48(SB)/4, $0x265e5a51
DATA md5K<>+0x4c(SB)/4, $0xe9b6c7aa
DATA md5K<>+0x50(SB)/4, $0xd62f105d
DATA md5K<>+0x54(SB)/4, $0x02441453
DATA md5K<>+0x58(SB)/4, $0xd8a1e681
DATA md5K<>+0x5c(SB)/4, $0xe7d3fbc8
DATA md5K<>+0x60(SB)/4, $0x21e1cde6
DATA md5K<>+0x64(SB)/4, $0xc33707d6
DATA md5K<>+0x68(SB)/4, $0xf4d50d87
DATA md5K<>+0x6c(SB)/4, $0x455a14ed
DATA md5K<>+0x70(SB)/4, $0xa9e3e905
DATA md5K<>+0x74(SB)/4, $0xfcefa3f8
DATA md5K<>+0x78(SB)/4, $0x676f02d9
DATA md5K<>+0x7c(SB)/4, $0x8d2a4c8a
DATA md5K<>+0x80(SB)/4, $0xfffa3942
DATA md5K<>+0x84(SB)/4, $0x8771f681
DATA md5K<>+0x88(SB)/4, $0x6d9d6122
DATA md5K<>+0x8c(SB)/4, $0xfde5380c
DATA md5K<>+0x90(SB)/4, $0xa4beea44
DATA md5K<>+0x94(SB)/4, $0x4bdecfa9
DATA md5K<>+0x98(SB)/4, $0xf6bb4b60
DATA md5K<>+0x9c(SB)/4, $0xbebfbc70
DATA md5K<>+0xa0(SB)/4, $0x289b7ec6
DATA md5K<>+0xa4(SB)/4, $0xeaa127fa
DATA md5K<>+0xa8(SB)/4, $0xd4ef3085
DATA md5K<>+0xac(SB)/4, $0x04881d05
DATA md5K<>+0xb0(SB)/4, $0xd9d4d039
DATA md5K<>+0xb4(SB)/4, $0xe6db99e5
DATA md5K<>+0xb8(SB)/4, $0x1fa27cf8
DATA md5K<>+0xbc(SB)/4, $0xc4ac5665
DATA md5K<>+0xc0(SB)/4, $0xf4292244
DATA md5K<>+0xc4(SB)/4, $0x432aff97
DATA md5K<>+0xc8(SB)/4, $0xab9423a7
DATA md5K<>+0xcc(SB)/4, $0xfc93a039
DATA md5K<>+0xd0(SB)/4, $0x655b59c3
DATA md5K<>+0xd4(SB)/4, $0x8f0ccc92
DATA md5K<>+0xd8(SB)/4, $0xffeff47d
DATA md5K<>+0xdc(SB)/4, $0x85845dd1
DATA md5K<>+0xe0(SB)/4, $0x6fa87e4f
DATA md5K<>+0xe4(SB)/4, $0xfe2ce6e0
DATA md5K<>+0xe8(SB)/4, $0xa3014314
DATA md5K<>+0xec(SB)/4, $0x4e0811a1
DATA md5K<>+0xf0(SB)/4, $0xf7537e82
DATA md5K<>+0xf4(SB)/4, $0xbd3af235
DATA md5K<>+0xf8(SB)/4, $0x2ad7d2bb
DATA md5K<>+0xfc(SB)/4, $0xeb86d391
GLOBL md5K<>(SB), RODATA|NOPTR, $256
