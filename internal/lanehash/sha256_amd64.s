//go:build !purego

#include "textflag.h"

// SHA-256 of sixteen independent messages at once, one per 32-bit lane of
// the AVX-512 registers (FIPS 180-4, section 6.2).
//
// Register layout while a block is compressed:
//
//	Z0-Z7    working variables; lane l of each holds lane l's a..h. Which
//	         register holds which variable rotates by one every round
//	         (round t keeps variable r, a=0 .. h=7, in Z((r-t) mod 8)),
//	         so no round moves data; after 64 rounds a..h are back in
//	         Z0..Z7.
//	Z8-Z23   message schedule: W[t] lives in Z(8 + t mod 16). Rounds 0-15
//	         use the words as loaded; from round 16 on each round first
//	         overwrites W[t-16] with W[t].
//	Z24-Z27  round temporaries; Z28-Z30 schedule temporaries.
//	K1       the busy lanes (the mask argument); the hash value is
//	         written back under K1 only.
//	K2       the busy-lane mask of the one lane being loaded.
//	DI       state: eight rows of 16 dwords, row w = word w of every lane.
//	AX       the mask argument.
//	SI       ptrs: the sixteen lanes' message pointers.
//	R9       byte offset of the current block from every lane's pointer.
//	BX       round constants of the current 16 rounds.
//	CX       blocks left; DX passes left over rounds 16-63.
//
// Message loading: each busy lane's block is one 64-byte load (an idle
// lane's load is fully masked, so it reads nothing), then a 16x16
// transpose of dwords turns the sixteen rows (one lane's block each) into
// the sixteen schedule words (one word of every lane each), and VPSHUFB
// swaps each word to big endian. The transpose runs in four steps of
// sixteen shuffles, alternating between two sets of sixteen registers:
// Z8-Z23 (rows, step 2 and step 4 results) and S = Z0-Z7, Z24-Z31 (step 1
// and step 3 results), which is why the working variables are reloaded
// from state after it. On the reference Cascade Lake a block of all
// sixteen lanes takes 352 ns of CPU time this way, against 634 ns when
// each word is assembled by two masked VPGATHERQD (absolute lane addresses
// as indices, R9 plus the word offset as base).
//
// Every round is nineteen instructions, plus eleven for its schedule word
// from round 16 on:
//
//	T1 = h + Σ1(e) + Ch(e,f,g) + K[t] + W[t]
//	T2 = Σ0(a) + Maj(a,b,c)
//	d += T1; h = T1 + T2 (h becomes the next round's a)
//
// Σ0, Σ1, σ0 and σ1 are three VPRORD/VPSRLD into temporaries merged by one
// VPTERNLOGD (0x96, three-way XOR); Ch is VPTERNLOGD 0xCA (e ? f : g) and
// Maj VPTERNLOGD 0xE8 (majority) on a copy of e or a, since VPTERNLOGD
// overwrites its first input. K[t] is broadcast from the table by the
// instruction that adds it to W[t]. A block is about 1,700 vector
// instructions, all on the two ports that execute 512-bit operations (the
// rotates and shifts on one of them only), and the kernel runs within a
// few percent of that bound: deleting the copies for Ch and Maj (rename
// eliminates them) or unrolling rounds 16-63 changed nothing measurable.

// sha256K holds the 64 round constants (FIPS 180-4, 4.2.2).
DATA sha256K<>+0x00(SB)/4, $0x428a2f98
DATA sha256K<>+0x04(SB)/4, $0x71374491
DATA sha256K<>+0x08(SB)/4, $0xb5c0fbcf
DATA sha256K<>+0x0c(SB)/4, $0xe9b5dba5
DATA sha256K<>+0x10(SB)/4, $0x3956c25b
DATA sha256K<>+0x14(SB)/4, $0x59f111f1
DATA sha256K<>+0x18(SB)/4, $0x923f82a4
DATA sha256K<>+0x1c(SB)/4, $0xab1c5ed5
DATA sha256K<>+0x20(SB)/4, $0xd807aa98
DATA sha256K<>+0x24(SB)/4, $0x12835b01
DATA sha256K<>+0x28(SB)/4, $0x243185be
DATA sha256K<>+0x2c(SB)/4, $0x550c7dc3
DATA sha256K<>+0x30(SB)/4, $0x72be5d74
DATA sha256K<>+0x34(SB)/4, $0x80deb1fe
DATA sha256K<>+0x38(SB)/4, $0x9bdc06a7
DATA sha256K<>+0x3c(SB)/4, $0xc19bf174
DATA sha256K<>+0x40(SB)/4, $0xe49b69c1
DATA sha256K<>+0x44(SB)/4, $0xefbe4786
DATA sha256K<>+0x48(SB)/4, $0x0fc19dc6
DATA sha256K<>+0x4c(SB)/4, $0x240ca1cc
DATA sha256K<>+0x50(SB)/4, $0x2de92c6f
DATA sha256K<>+0x54(SB)/4, $0x4a7484aa
DATA sha256K<>+0x58(SB)/4, $0x5cb0a9dc
DATA sha256K<>+0x5c(SB)/4, $0x76f988da
DATA sha256K<>+0x60(SB)/4, $0x983e5152
DATA sha256K<>+0x64(SB)/4, $0xa831c66d
DATA sha256K<>+0x68(SB)/4, $0xb00327c8
DATA sha256K<>+0x6c(SB)/4, $0xbf597fc7
DATA sha256K<>+0x70(SB)/4, $0xc6e00bf3
DATA sha256K<>+0x74(SB)/4, $0xd5a79147
DATA sha256K<>+0x78(SB)/4, $0x06ca6351
DATA sha256K<>+0x7c(SB)/4, $0x14292967
DATA sha256K<>+0x80(SB)/4, $0x27b70a85
DATA sha256K<>+0x84(SB)/4, $0x2e1b2138
DATA sha256K<>+0x88(SB)/4, $0x4d2c6dfc
DATA sha256K<>+0x8c(SB)/4, $0x53380d13
DATA sha256K<>+0x90(SB)/4, $0x650a7354
DATA sha256K<>+0x94(SB)/4, $0x766a0abb
DATA sha256K<>+0x98(SB)/4, $0x81c2c92e
DATA sha256K<>+0x9c(SB)/4, $0x92722c85
DATA sha256K<>+0xa0(SB)/4, $0xa2bfe8a1
DATA sha256K<>+0xa4(SB)/4, $0xa81a664b
DATA sha256K<>+0xa8(SB)/4, $0xc24b8b70
DATA sha256K<>+0xac(SB)/4, $0xc76c51a3
DATA sha256K<>+0xb0(SB)/4, $0xd192e819
DATA sha256K<>+0xb4(SB)/4, $0xd6990624
DATA sha256K<>+0xb8(SB)/4, $0xf40e3585
DATA sha256K<>+0xbc(SB)/4, $0x106aa070
DATA sha256K<>+0xc0(SB)/4, $0x19a4c116
DATA sha256K<>+0xc4(SB)/4, $0x1e376c08
DATA sha256K<>+0xc8(SB)/4, $0x2748774c
DATA sha256K<>+0xcc(SB)/4, $0x34b0bcb5
DATA sha256K<>+0xd0(SB)/4, $0x391c0cb3
DATA sha256K<>+0xd4(SB)/4, $0x4ed8aa4a
DATA sha256K<>+0xd8(SB)/4, $0x5b9cca4f
DATA sha256K<>+0xdc(SB)/4, $0x682e6ff3
DATA sha256K<>+0xe0(SB)/4, $0x748f82ee
DATA sha256K<>+0xe4(SB)/4, $0x78a5636f
DATA sha256K<>+0xe8(SB)/4, $0x84c87814
DATA sha256K<>+0xec(SB)/4, $0x8cc70208
DATA sha256K<>+0xf0(SB)/4, $0x90befffa
DATA sha256K<>+0xf4(SB)/4, $0xa4506ceb
DATA sha256K<>+0xf8(SB)/4, $0xbef9a3f7
DATA sha256K<>+0xfc(SB)/4, $0xc67178f2
GLOBL sha256K<>(SB), RODATA|NOPTR, $256

// sha256Swap is the VPSHUFB control that reverses the bytes of every dword.
DATA sha256Swap<>+0x00(SB)/8, $0x0405060700010203
DATA sha256Swap<>+0x08(SB)/8, $0x0c0d0e0f08090a0b
DATA sha256Swap<>+0x10(SB)/8, $0x0405060700010203
DATA sha256Swap<>+0x18(SB)/8, $0x0c0d0e0f08090a0b
DATA sha256Swap<>+0x20(SB)/8, $0x0405060700010203
DATA sha256Swap<>+0x28(SB)/8, $0x0c0d0e0f08090a0b
DATA sha256Swap<>+0x30(SB)/8, $0x0405060700010203
DATA sha256Swap<>+0x38(SB)/8, $0x0c0d0e0f08090a0b
GLOBL sha256Swap<>(SB), RODATA|NOPTR, $64

// LOADROW loads lane i's current block into row, or zeros when lane i is
// idle. The frame holds at i*2(SP) a 16-bit mask that is all ones for a
// busy lane and zero for an idle one. An idle lane's load is fully masked,
// so it reads nothing, and its address is replaced by the state's: a
// masked-off element at an unmapped address (a nil pointer) would not
// fault but would cost a microcode assist on every load.
#define LOADROW(i, row) \
	MOVQ        ((i)*8)(SI), R8 \
	ADDQ        R9, R8 \
	BTL         $(i), AX \
	CMOVQCC     DI, R8 \
	KMOVW       ((i)*2)(SP), K2 \
	VMOVDQU32.Z (R8), K2, row

// ROUND is one round with the variables in a..h, W[t] in w and K[t] at
// t*4(BX).
#define ROUND(a, b, c, d, e, f, g, h, w, t) \
	VPADDD.BCST ((t)*4)(BX), w, Z24 \
	VPRORD      $6, e, Z25 \
	VPRORD      $11, e, Z26 \
	VPRORD      $25, e, Z27 \
	VPADDD      Z24, h, h \
	VPTERNLOGD  $0x96, Z27, Z26, Z25 \
	VMOVDQA32   e, Z24 \
	VPTERNLOGD  $0xCA, g, f, Z24 \
	VPADDD      Z25, h, h \
	VPADDD      Z24, h, h \
	VPRORD      $2, a, Z25 \
	VPRORD      $13, a, Z26 \
	VPRORD      $22, a, Z27 \
	VPADDD      h, d, d \
	VPTERNLOGD  $0x96, Z27, Z26, Z25 \
	VMOVDQA32   a, Z24 \
	VPTERNLOGD  $0xE8, c, b, Z24 \
	VPADDD      Z25, h, h \
	VPADDD      Z24, h, h

// SCHEDULE turns W[t-16] in w16 into W[t] = σ1(W[t-2]) + W[t-7] +
// σ0(W[t-15]) + W[t-16], with W[t-15] in w15, W[t-7] in w7, W[t-2] in w2.
#define SCHEDULE(w16, w15, w7, w2) \
	VPRORD     $7, w15, Z28 \
	VPRORD     $18, w15, Z29 \
	VPSRLD     $3, w15, Z30 \
	VPTERNLOGD $0x96, Z30, Z29, Z28 \
	VPADDD     Z28, w16, w16 \
	VPADDD     w7, w16, w16 \
	VPRORD     $17, w2, Z28 \
	VPRORD     $19, w2, Z29 \
	VPSRLD     $10, w2, Z30 \
	VPTERNLOGD $0x96, Z30, Z29, Z28 \
	VPADDD     Z28, w16, w16

// ROUNDS16 is rounds 0-15 on the loaded words, K[t] at t*4(BX).
#define ROUNDS16(t) \
	ROUND(Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z8, t+0) \
	ROUND(Z7, Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z9, t+1) \
	ROUND(Z6, Z7, Z0, Z1, Z2, Z3, Z4, Z5, Z10, t+2) \
	ROUND(Z5, Z6, Z7, Z0, Z1, Z2, Z3, Z4, Z11, t+3) \
	ROUND(Z4, Z5, Z6, Z7, Z0, Z1, Z2, Z3, Z12, t+4) \
	ROUND(Z3, Z4, Z5, Z6, Z7, Z0, Z1, Z2, Z13, t+5) \
	ROUND(Z2, Z3, Z4, Z5, Z6, Z7, Z0, Z1, Z14, t+6) \
	ROUND(Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z0, Z15, t+7) \
	ROUND(Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z16, t+8) \
	ROUND(Z7, Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z17, t+9) \
	ROUND(Z6, Z7, Z0, Z1, Z2, Z3, Z4, Z5, Z18, t+10) \
	ROUND(Z5, Z6, Z7, Z0, Z1, Z2, Z3, Z4, Z19, t+11) \
	ROUND(Z4, Z5, Z6, Z7, Z0, Z1, Z2, Z3, Z20, t+12) \
	ROUND(Z3, Z4, Z5, Z6, Z7, Z0, Z1, Z2, Z21, t+13) \
	ROUND(Z2, Z3, Z4, Z5, Z6, Z7, Z0, Z1, Z22, t+14) \
	ROUND(Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z0, Z23, t+15)

// SCHEDULED16 is sixteen rounds from round 16, 32 or 48 on, each computing
// its word first; t is the first round's index relative to BX.
#define SCHEDULED16(t) \
	SCHEDULE(Z8, Z9, Z17, Z22) \
	ROUND(Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z8, t+0) \
	SCHEDULE(Z9, Z10, Z18, Z23) \
	ROUND(Z7, Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z9, t+1) \
	SCHEDULE(Z10, Z11, Z19, Z8) \
	ROUND(Z6, Z7, Z0, Z1, Z2, Z3, Z4, Z5, Z10, t+2) \
	SCHEDULE(Z11, Z12, Z20, Z9) \
	ROUND(Z5, Z6, Z7, Z0, Z1, Z2, Z3, Z4, Z11, t+3) \
	SCHEDULE(Z12, Z13, Z21, Z10) \
	ROUND(Z4, Z5, Z6, Z7, Z0, Z1, Z2, Z3, Z12, t+4) \
	SCHEDULE(Z13, Z14, Z22, Z11) \
	ROUND(Z3, Z4, Z5, Z6, Z7, Z0, Z1, Z2, Z13, t+5) \
	SCHEDULE(Z14, Z15, Z23, Z12) \
	ROUND(Z2, Z3, Z4, Z5, Z6, Z7, Z0, Z1, Z14, t+6) \
	SCHEDULE(Z15, Z16, Z8, Z13) \
	ROUND(Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z0, Z15, t+7) \
	SCHEDULE(Z16, Z17, Z9, Z14) \
	ROUND(Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z16, t+8) \
	SCHEDULE(Z17, Z18, Z10, Z15) \
	ROUND(Z7, Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z17, t+9) \
	SCHEDULE(Z18, Z19, Z11, Z16) \
	ROUND(Z6, Z7, Z0, Z1, Z2, Z3, Z4, Z5, Z18, t+10) \
	SCHEDULE(Z19, Z20, Z12, Z17) \
	ROUND(Z5, Z6, Z7, Z0, Z1, Z2, Z3, Z4, Z19, t+11) \
	SCHEDULE(Z20, Z21, Z13, Z18) \
	ROUND(Z4, Z5, Z6, Z7, Z0, Z1, Z2, Z3, Z20, t+12) \
	SCHEDULE(Z21, Z22, Z14, Z19) \
	ROUND(Z3, Z4, Z5, Z6, Z7, Z0, Z1, Z2, Z21, t+13) \
	SCHEDULE(Z22, Z23, Z15, Z20) \
	ROUND(Z2, Z3, Z4, Z5, Z6, Z7, Z0, Z1, Z22, t+14) \
	SCHEDULE(Z23, Z8, Z16, Z21) \
	ROUND(Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z0, Z23, t+15)

// func sha256Block16(state *[8][16]uint32, ptrs *[16]unsafe.Pointer, blocks int, mask uint16)
//
// Frame: 32 bytes, the sixteen per-lane load masks of LOADROW.
TEXT ·sha256Block16(SB), NOSPLIT, $32-26
	MOVQ    state+0(FP), DI
	MOVQ    ptrs+8(FP), SI
	MOVQ    blocks+16(FP), CX
	TESTQ   CX, CX
	JLE     none
	MOVWLZX mask+24(FP), AX
	KMOVW   AX, K1

	// Spread the mask into one all-or-nothing word per lane.
	XORL DX, DX

lanemasks:
	BTL  DX, AX
	SBBL R8, R8
	MOVW R8, (SP)(DX*2)
	INCL DX
	CMPL DX, $16
	JB   lanemasks

	XORL R9, R9

block:
	// Row l = lane l's block, in Z(8+l).
	LOADROW(0, Z8)
	LOADROW(1, Z9)
	LOADROW(2, Z10)
	LOADROW(3, Z11)
	LOADROW(4, Z12)
	LOADROW(5, Z13)
	LOADROW(6, Z14)
	LOADROW(7, Z15)
	LOADROW(8, Z16)
	LOADROW(9, Z17)
	LOADROW(10, Z18)
	LOADROW(11, Z19)
	LOADROW(12, Z20)
	LOADROW(13, Z21)
	LOADROW(14, Z22)
	LOADROW(15, Z23)

	// Transpose step 1: within each group of four rows r0..r3 and each
	// 128-bit chunk c, interleave dwords of r0 with r1 and of r2 with r3:
	// t0 = r0[4c] r1[4c] r0[4c+1] r1[4c+1], t1 = the same for 4c+2 and
	// 4c+3, t2 and t3 for r2, r3. Rows Z8-Z23 -> S.
	VPUNPCKLDQ Z9, Z8, Z0
	VPUNPCKHDQ Z9, Z8, Z1
	VPUNPCKLDQ Z11, Z10, Z2
	VPUNPCKHDQ Z11, Z10, Z3
	VPUNPCKLDQ Z13, Z12, Z4
	VPUNPCKHDQ Z13, Z12, Z5
	VPUNPCKLDQ Z15, Z14, Z6
	VPUNPCKHDQ Z15, Z14, Z7
	VPUNPCKLDQ Z17, Z16, Z24
	VPUNPCKHDQ Z17, Z16, Z25
	VPUNPCKLDQ Z19, Z18, Z26
	VPUNPCKHDQ Z19, Z18, Z27
	VPUNPCKLDQ Z21, Z20, Z28
	VPUNPCKHDQ Z21, Z20, Z29
	VPUNPCKLDQ Z23, Z22, Z30
	VPUNPCKHDQ Z23, Z22, Z31

	// Step 2: interleave qwords of t0 with t2 and t1 with t3, giving for
	// group g four registers u_k (k = 0..3) whose chunk c is word 4c+k of
	// the group's four rows. S -> Z(8+4g+k).
	VPUNPCKLQDQ Z2, Z0, Z8
	VPUNPCKHQDQ Z2, Z0, Z9
	VPUNPCKLQDQ Z3, Z1, Z10
	VPUNPCKHQDQ Z3, Z1, Z11
	VPUNPCKLQDQ Z6, Z4, Z12
	VPUNPCKHQDQ Z6, Z4, Z13
	VPUNPCKLQDQ Z7, Z5, Z14
	VPUNPCKHQDQ Z7, Z5, Z15
	VPUNPCKLQDQ Z26, Z24, Z16
	VPUNPCKHQDQ Z26, Z24, Z17
	VPUNPCKLQDQ Z27, Z25, Z18
	VPUNPCKHQDQ Z27, Z25, Z19
	VPUNPCKLQDQ Z30, Z28, Z20
	VPUNPCKHQDQ Z30, Z28, Z21
	VPUNPCKLQDQ Z31, Z29, Z22
	VPUNPCKHQDQ Z31, Z29, Z23

	// Step 3: for each k, pair the u_k of groups 0,1 and of groups 2,3 by
	// 128-bit chunks: lo = chunks 0,1 of the first and 0,1 of the second
	// (0x44), hi = chunks 2,3 of both (0xEE). Z8-Z23 -> S: groups 0,1 lo
	// in Z(k), hi in Z(4+k); groups 2,3 lo in Z(24+k), hi in Z(28+k).
	VSHUFI32X4 $0x44, Z12, Z8, Z0
	VSHUFI32X4 $0xEE, Z12, Z8, Z4
	VSHUFI32X4 $0x44, Z20, Z16, Z24
	VSHUFI32X4 $0xEE, Z20, Z16, Z28
	VSHUFI32X4 $0x44, Z13, Z9, Z1
	VSHUFI32X4 $0xEE, Z13, Z9, Z5
	VSHUFI32X4 $0x44, Z21, Z17, Z25
	VSHUFI32X4 $0xEE, Z21, Z17, Z29
	VSHUFI32X4 $0x44, Z14, Z10, Z2
	VSHUFI32X4 $0xEE, Z14, Z10, Z6
	VSHUFI32X4 $0x44, Z22, Z18, Z26
	VSHUFI32X4 $0xEE, Z22, Z18, Z30
	VSHUFI32X4 $0x44, Z15, Z11, Z3
	VSHUFI32X4 $0xEE, Z15, Z11, Z7
	VSHUFI32X4 $0x44, Z23, Z19, Z27
	VSHUFI32X4 $0xEE, Z23, Z19, Z31

	// Step 4: word 4c+k of all sixteen lanes is chunk c of each group's
	// u_k: even chunks (0x88) of lo or hi give c = 0 or 2, odd chunks
	// (0xDD) give c = 1 or 3. S -> W[0..15] in Z8-Z23.
	VSHUFI32X4 $0x88, Z24, Z0, Z8
	VSHUFI32X4 $0xDD, Z24, Z0, Z12
	VSHUFI32X4 $0x88, Z28, Z4, Z16
	VSHUFI32X4 $0xDD, Z28, Z4, Z20
	VSHUFI32X4 $0x88, Z25, Z1, Z9
	VSHUFI32X4 $0xDD, Z25, Z1, Z13
	VSHUFI32X4 $0x88, Z29, Z5, Z17
	VSHUFI32X4 $0xDD, Z29, Z5, Z21
	VSHUFI32X4 $0x88, Z26, Z2, Z10
	VSHUFI32X4 $0xDD, Z26, Z2, Z14
	VSHUFI32X4 $0x88, Z30, Z6, Z18
	VSHUFI32X4 $0xDD, Z30, Z6, Z22
	VSHUFI32X4 $0x88, Z27, Z3, Z11
	VSHUFI32X4 $0xDD, Z27, Z3, Z15
	VSHUFI32X4 $0x88, Z31, Z7, Z19
	VSHUFI32X4 $0xDD, Z31, Z7, Z23

	// Big-endian words.
	VMOVDQU64 sha256Swap<>(SB), Z24
	VPSHUFB   Z24, Z8, Z8
	VPSHUFB   Z24, Z9, Z9
	VPSHUFB   Z24, Z10, Z10
	VPSHUFB   Z24, Z11, Z11
	VPSHUFB   Z24, Z12, Z12
	VPSHUFB   Z24, Z13, Z13
	VPSHUFB   Z24, Z14, Z14
	VPSHUFB   Z24, Z15, Z15
	VPSHUFB   Z24, Z16, Z16
	VPSHUFB   Z24, Z17, Z17
	VPSHUFB   Z24, Z18, Z18
	VPSHUFB   Z24, Z19, Z19
	VPSHUFB   Z24, Z20, Z20
	VPSHUFB   Z24, Z21, Z21
	VPSHUFB   Z24, Z22, Z22
	VPSHUFB   Z24, Z23, Z23

	// a..h from the state.
	VMOVDQU32 (0*64)(DI), Z0
	VMOVDQU32 (1*64)(DI), Z1
	VMOVDQU32 (2*64)(DI), Z2
	VMOVDQU32 (3*64)(DI), Z3
	VMOVDQU32 (4*64)(DI), Z4
	VMOVDQU32 (5*64)(DI), Z5
	VMOVDQU32 (6*64)(DI), Z6
	VMOVDQU32 (7*64)(DI), Z7

	// Rounds 0-15, then rounds 16-63 as three passes of one 16-round
	// body, BX advancing by sixteen constants a pass; the loop keeps the
	// code at about 5 KB instead of 13 KB at the same speed.
	LEAQ sha256K<>(SB), BX
	ROUNDS16(0)
	MOVL $3, DX

rounds:
	ADDQ $64, BX
	SCHEDULED16(0)
	DECL DX
	JNZ  rounds

	// Add the block's result to the hash value of the busy lanes only.
	VPADDD    (0*64)(DI), Z0, Z0
	VPADDD    (1*64)(DI), Z1, Z1
	VPADDD    (2*64)(DI), Z2, Z2
	VPADDD    (3*64)(DI), Z3, Z3
	VPADDD    (4*64)(DI), Z4, Z4
	VPADDD    (5*64)(DI), Z5, Z5
	VPADDD    (6*64)(DI), Z6, Z6
	VPADDD    (7*64)(DI), Z7, Z7
	VMOVDQU32 Z0, K1, (0*64)(DI)
	VMOVDQU32 Z1, K1, (1*64)(DI)
	VMOVDQU32 Z2, K1, (2*64)(DI)
	VMOVDQU32 Z3, K1, (3*64)(DI)
	VMOVDQU32 Z4, K1, (4*64)(DI)
	VMOVDQU32 Z5, K1, (5*64)(DI)
	VMOVDQU32 Z6, K1, (6*64)(DI)
	VMOVDQU32 Z7, K1, (7*64)(DI)

	ADDQ $64, R9
	DECQ CX
	JNZ  block

	VZEROUPPER

none:
	RET
