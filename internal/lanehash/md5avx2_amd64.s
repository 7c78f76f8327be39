//go:build amd64 && !purego

#include "textflag.h"

// 8-lane MD5 block function for AVX2, for CPUs without AVX-512.
//
// One call hashes the lanes of one half of the 16-lane state (lanes 0-7 or
// 8-15): each of the 8 dword lanes of a YMM register belongs to one message.
// Register use:
//
//	Y0-Y3    the working variables; their roles a, b, c, d rotate by one
//	         register every step (the step's new b goes where a was)
//	Y4-Y7    chaining value a, b, c, d; loaded from and stored to state
//	Y8, Y9   temporaries: f(b, c, d), the step constant, the rotation
//	Y10      busy lanes: all ones where the lane's pointer is not nil
//	Y11      all ones, for NOT in the I function
//	DI       &state[0][8*half]: word w of lane i is at 64*w + 4*i
//	SI       &ptrs[8*half]
//	CX       blocks left
//	DX       offset of the current block from every lane's pointer
//	R9       address of the step constants md5K
//	0(SP)    the current block's message words, transposed: word w of
//	         lane i at 32*w + 4*i (512 bytes); idle lanes write nothing
//
// The transpose is scalar (one 32-bit load and store per word and lane):
// AVX2 has too few registers to transpose 8 rows of 64 bytes in them, and
// the scalar copy costs a few percent of the 64 vector steps. Idle lanes
// compute on stale words; the feed-forward adds the block's result to the
// chaining value only where Y10 is set, so their state is left as it was.

// The MD5 functions, into Y8: F = d ^ (b & (c ^ d)), G = c ^ (d & (b ^ c)),
// H = b ^ c ^ d, I = c ^ (b | ^d).
#define FUN_F(b, c, d) VPXOR d, c, Y8; VPAND b, Y8, Y8; VPXOR d, Y8, Y8
#define FUN_G(b, c, d) VPXOR c, b, Y8; VPAND d, Y8, Y8; VPXOR c, Y8, Y8
#define FUN_H(b, c, d) VPXOR c, b, Y8; VPXOR d, Y8, Y8
#define FUN_I(b, c, d) VPXOR Y11, d, Y8; VPOR b, Y8, Y8; VPXOR c, Y8, Y8

// STEP is one MD5 step on 8 lanes, with f(b, c, d) in Y8:
// a = b + ((a + f + M[g] + K[i]) <<< s); moff is 32*g, koff is 4*i.
#define STEP(a, b, moff, koff, s, rs) \
	VPADDD       moff(SP), a, a; \
	VPBROADCASTD koff(R9), Y9;   \
	VPADDD       Y9, a, a;       \
	VPADDD       Y8, a, a;       \
	VPSLLD       $s, a, Y9;      \
	VPSRLD       $rs, a, a;      \
	VPOR         Y9, a, a;       \
	VPADDD       b, a, a


// func md5Blocks8AVX2(state *[4][16]uint32, ptrs *[16]*byte, blocks int, half int)
TEXT ·md5Blocks8AVX2(SB), NOSPLIT, $512-32
	MOVQ state+0(FP), DI
	MOVQ ptrs+8(FP), SI
	MOVQ blocks+16(FP), CX
	MOVQ half+24(FP), AX
	TESTQ CX, CX
	JLE  done
	MOVQ AX, BX
	SHLQ $5, BX
	ADDQ BX, DI
	SHLQ $6, AX
	ADDQ AX, SI
	LEAQ ·md5K(SB), R9

	MOVQ 0(SI), R8
	XORL R11, R11
	TESTQ R8, R8
	SETNE R11B
	NEGL R11
	MOVL R11, 0(SP)
	MOVQ 8(SI), R8
	XORL R11, R11
	TESTQ R8, R8
	SETNE R11B
	NEGL R11
	MOVL R11, 4(SP)
	MOVQ 16(SI), R8
	XORL R11, R11
	TESTQ R8, R8
	SETNE R11B
	NEGL R11
	MOVL R11, 8(SP)
	MOVQ 24(SI), R8
	XORL R11, R11
	TESTQ R8, R8
	SETNE R11B
	NEGL R11
	MOVL R11, 12(SP)
	MOVQ 32(SI), R8
	XORL R11, R11
	TESTQ R8, R8
	SETNE R11B
	NEGL R11
	MOVL R11, 16(SP)
	MOVQ 40(SI), R8
	XORL R11, R11
	TESTQ R8, R8
	SETNE R11B
	NEGL R11
	MOVL R11, 20(SP)
	MOVQ 48(SI), R8
	XORL R11, R11
	TESTQ R8, R8
	SETNE R11B
	NEGL R11
	MOVL R11, 24(SP)
	MOVQ 56(SI), R8
	XORL R11, R11
	TESTQ R8, R8
	SETNE R11B
	NEGL R11
	MOVL R11, 28(SP)
	VMOVDQU 0(SP), Y10
	VPCMPEQD Y11, Y11, Y11
	VMOVDQU 0(DI), Y4
	VMOVDQU 64(DI), Y5
	VMOVDQU 128(DI), Y6
	VMOVDQU 192(DI), Y7
	XORQ DX, DX

block:
	MOVQ 0(SI), R8
	TESTQ R8, R8
	JZ lane0
	MOVL 0(R8)(DX*1), R11
	MOVL R11, 0(SP)
	MOVL 4(R8)(DX*1), R11
	MOVL R11, 32(SP)
	MOVL 8(R8)(DX*1), R11
	MOVL R11, 64(SP)
	MOVL 12(R8)(DX*1), R11
	MOVL R11, 96(SP)
	MOVL 16(R8)(DX*1), R11
	MOVL R11, 128(SP)
	MOVL 20(R8)(DX*1), R11
	MOVL R11, 160(SP)
	MOVL 24(R8)(DX*1), R11
	MOVL R11, 192(SP)
	MOVL 28(R8)(DX*1), R11
	MOVL R11, 224(SP)
	MOVL 32(R8)(DX*1), R11
	MOVL R11, 256(SP)
	MOVL 36(R8)(DX*1), R11
	MOVL R11, 288(SP)
	MOVL 40(R8)(DX*1), R11
	MOVL R11, 320(SP)
	MOVL 44(R8)(DX*1), R11
	MOVL R11, 352(SP)
	MOVL 48(R8)(DX*1), R11
	MOVL R11, 384(SP)
	MOVL 52(R8)(DX*1), R11
	MOVL R11, 416(SP)
	MOVL 56(R8)(DX*1), R11
	MOVL R11, 448(SP)
	MOVL 60(R8)(DX*1), R11
	MOVL R11, 480(SP)
lane0:
	MOVQ 8(SI), R8
	TESTQ R8, R8
	JZ lane1
	MOVL 0(R8)(DX*1), R11
	MOVL R11, 4(SP)
	MOVL 4(R8)(DX*1), R11
	MOVL R11, 36(SP)
	MOVL 8(R8)(DX*1), R11
	MOVL R11, 68(SP)
	MOVL 12(R8)(DX*1), R11
	MOVL R11, 100(SP)
	MOVL 16(R8)(DX*1), R11
	MOVL R11, 132(SP)
	MOVL 20(R8)(DX*1), R11
	MOVL R11, 164(SP)
	MOVL 24(R8)(DX*1), R11
	MOVL R11, 196(SP)
	MOVL 28(R8)(DX*1), R11
	MOVL R11, 228(SP)
	MOVL 32(R8)(DX*1), R11
	MOVL R11, 260(SP)
	MOVL 36(R8)(DX*1), R11
	MOVL R11, 292(SP)
	MOVL 40(R8)(DX*1), R11
	MOVL R11, 324(SP)
	MOVL 44(R8)(DX*1), R11
	MOVL R11, 356(SP)
	MOVL 48(R8)(DX*1), R11
	MOVL R11, 388(SP)
	MOVL 52(R8)(DX*1), R11
	MOVL R11, 420(SP)
	MOVL 56(R8)(DX*1), R11
	MOVL R11, 452(SP)
	MOVL 60(R8)(DX*1), R11
	MOVL R11, 484(SP)
lane1:
	MOVQ 16(SI), R8
	TESTQ R8, R8
	JZ lane2
	MOVL 0(R8)(DX*1), R11
	MOVL R11, 8(SP)
	MOVL 4(R8)(DX*1), R11
	MOVL R11, 40(SP)
	MOVL 8(R8)(DX*1), R11
	MOVL R11, 72(SP)
	MOVL 12(R8)(DX*1), R11
	MOVL R11, 104(SP)
	MOVL 16(R8)(DX*1), R11
	MOVL R11, 136(SP)
	MOVL 20(R8)(DX*1), R11
	MOVL R11, 168(SP)
	MOVL 24(R8)(DX*1), R11
	MOVL R11, 200(SP)
	MOVL 28(R8)(DX*1), R11
	MOVL R11, 232(SP)
	MOVL 32(R8)(DX*1), R11
	MOVL R11, 264(SP)
	MOVL 36(R8)(DX*1), R11
	MOVL R11, 296(SP)
	MOVL 40(R8)(DX*1), R11
	MOVL R11, 328(SP)
	MOVL 44(R8)(DX*1), R11
	MOVL R11, 360(SP)
	MOVL 48(R8)(DX*1), R11
	MOVL R11, 392(SP)
	MOVL 52(R8)(DX*1), R11
	MOVL R11, 424(SP)
	MOVL 56(R8)(DX*1), R11
	MOVL R11, 456(SP)
	MOVL 60(R8)(DX*1), R11
	MOVL R11, 488(SP)
lane2:
	MOVQ 24(SI), R8
	TESTQ R8, R8
	JZ lane3
	MOVL 0(R8)(DX*1), R11
	MOVL R11, 12(SP)
	MOVL 4(R8)(DX*1), R11
	MOVL R11, 44(SP)
	MOVL 8(R8)(DX*1), R11
	MOVL R11, 76(SP)
	MOVL 12(R8)(DX*1), R11
	MOVL R11, 108(SP)
	MOVL 16(R8)(DX*1), R11
	MOVL R11, 140(SP)
	MOVL 20(R8)(DX*1), R11
	MOVL R11, 172(SP)
	MOVL 24(R8)(DX*1), R11
	MOVL R11, 204(SP)
	MOVL 28(R8)(DX*1), R11
	MOVL R11, 236(SP)
	MOVL 32(R8)(DX*1), R11
	MOVL R11, 268(SP)
	MOVL 36(R8)(DX*1), R11
	MOVL R11, 300(SP)
	MOVL 40(R8)(DX*1), R11
	MOVL R11, 332(SP)
	MOVL 44(R8)(DX*1), R11
	MOVL R11, 364(SP)
	MOVL 48(R8)(DX*1), R11
	MOVL R11, 396(SP)
	MOVL 52(R8)(DX*1), R11
	MOVL R11, 428(SP)
	MOVL 56(R8)(DX*1), R11
	MOVL R11, 460(SP)
	MOVL 60(R8)(DX*1), R11
	MOVL R11, 492(SP)
lane3:
	MOVQ 32(SI), R8
	TESTQ R8, R8
	JZ lane4
	MOVL 0(R8)(DX*1), R11
	MOVL R11, 16(SP)
	MOVL 4(R8)(DX*1), R11
	MOVL R11, 48(SP)
	MOVL 8(R8)(DX*1), R11
	MOVL R11, 80(SP)
	MOVL 12(R8)(DX*1), R11
	MOVL R11, 112(SP)
	MOVL 16(R8)(DX*1), R11
	MOVL R11, 144(SP)
	MOVL 20(R8)(DX*1), R11
	MOVL R11, 176(SP)
	MOVL 24(R8)(DX*1), R11
	MOVL R11, 208(SP)
	MOVL 28(R8)(DX*1), R11
	MOVL R11, 240(SP)
	MOVL 32(R8)(DX*1), R11
	MOVL R11, 272(SP)
	MOVL 36(R8)(DX*1), R11
	MOVL R11, 304(SP)
	MOVL 40(R8)(DX*1), R11
	MOVL R11, 336(SP)
	MOVL 44(R8)(DX*1), R11
	MOVL R11, 368(SP)
	MOVL 48(R8)(DX*1), R11
	MOVL R11, 400(SP)
	MOVL 52(R8)(DX*1), R11
	MOVL R11, 432(SP)
	MOVL 56(R8)(DX*1), R11
	MOVL R11, 464(SP)
	MOVL 60(R8)(DX*1), R11
	MOVL R11, 496(SP)
lane4:
	MOVQ 40(SI), R8
	TESTQ R8, R8
	JZ lane5
	MOVL 0(R8)(DX*1), R11
	MOVL R11, 20(SP)
	MOVL 4(R8)(DX*1), R11
	MOVL R11, 52(SP)
	MOVL 8(R8)(DX*1), R11
	MOVL R11, 84(SP)
	MOVL 12(R8)(DX*1), R11
	MOVL R11, 116(SP)
	MOVL 16(R8)(DX*1), R11
	MOVL R11, 148(SP)
	MOVL 20(R8)(DX*1), R11
	MOVL R11, 180(SP)
	MOVL 24(R8)(DX*1), R11
	MOVL R11, 212(SP)
	MOVL 28(R8)(DX*1), R11
	MOVL R11, 244(SP)
	MOVL 32(R8)(DX*1), R11
	MOVL R11, 276(SP)
	MOVL 36(R8)(DX*1), R11
	MOVL R11, 308(SP)
	MOVL 40(R8)(DX*1), R11
	MOVL R11, 340(SP)
	MOVL 44(R8)(DX*1), R11
	MOVL R11, 372(SP)
	MOVL 48(R8)(DX*1), R11
	MOVL R11, 404(SP)
	MOVL 52(R8)(DX*1), R11
	MOVL R11, 436(SP)
	MOVL 56(R8)(DX*1), R11
	MOVL R11, 468(SP)
	MOVL 60(R8)(DX*1), R11
	MOVL R11, 500(SP)
lane5:
	MOVQ 48(SI), R8
	TESTQ R8, R8
	JZ lane6
	MOVL 0(R8)(DX*1), R11
	MOVL R11, 24(SP)
	MOVL 4(R8)(DX*1), R11
	MOVL R11, 56(SP)
	MOVL 8(R8)(DX*1), R11
	MOVL R11, 88(SP)
	MOVL 12(R8)(DX*1), R11
	MOVL R11, 120(SP)
	MOVL 16(R8)(DX*1), R11
	MOVL R11, 152(SP)
	MOVL 20(R8)(DX*1), R11
	MOVL R11, 184(SP)
	MOVL 24(R8)(DX*1), R11
	MOVL R11, 216(SP)
	MOVL 28(R8)(DX*1), R11
	MOVL R11, 248(SP)
	MOVL 32(R8)(DX*1), R11
	MOVL R11, 280(SP)
	MOVL 36(R8)(DX*1), R11
	MOVL R11, 312(SP)
	MOVL 40(R8)(DX*1), R11
	MOVL R11, 344(SP)
	MOVL 44(R8)(DX*1), R11
	MOVL R11, 376(SP)
	MOVL 48(R8)(DX*1), R11
	MOVL R11, 408(SP)
	MOVL 52(R8)(DX*1), R11
	MOVL R11, 440(SP)
	MOVL 56(R8)(DX*1), R11
	MOVL R11, 472(SP)
	MOVL 60(R8)(DX*1), R11
	MOVL R11, 504(SP)
lane6:
	MOVQ 56(SI), R8
	TESTQ R8, R8
	JZ lane7
	MOVL 0(R8)(DX*1), R11
	MOVL R11, 28(SP)
	MOVL 4(R8)(DX*1), R11
	MOVL R11, 60(SP)
	MOVL 8(R8)(DX*1), R11
	MOVL R11, 92(SP)
	MOVL 12(R8)(DX*1), R11
	MOVL R11, 124(SP)
	MOVL 16(R8)(DX*1), R11
	MOVL R11, 156(SP)
	MOVL 20(R8)(DX*1), R11
	MOVL R11, 188(SP)
	MOVL 24(R8)(DX*1), R11
	MOVL R11, 220(SP)
	MOVL 28(R8)(DX*1), R11
	MOVL R11, 252(SP)
	MOVL 32(R8)(DX*1), R11
	MOVL R11, 284(SP)
	MOVL 36(R8)(DX*1), R11
	MOVL R11, 316(SP)
	MOVL 40(R8)(DX*1), R11
	MOVL R11, 348(SP)
	MOVL 44(R8)(DX*1), R11
	MOVL R11, 380(SP)
	MOVL 48(R8)(DX*1), R11
	MOVL R11, 412(SP)
	MOVL 52(R8)(DX*1), R11
	MOVL R11, 444(SP)
	MOVL 56(R8)(DX*1), R11
	MOVL R11, 476(SP)
	MOVL 60(R8)(DX*1), R11
	MOVL R11, 508(SP)
lane7:
	VMOVDQU Y4, Y0
	VMOVDQU Y5, Y1
	VMOVDQU Y6, Y2
	VMOVDQU Y7, Y3
	FUN_F(Y1, Y2, Y3)
	STEP(Y0, Y1, 0, 0, 7, 25)
	FUN_F(Y0, Y1, Y2)
	STEP(Y3, Y0, 32, 4, 12, 20)
	FUN_F(Y3, Y0, Y1)
	STEP(Y2, Y3, 64, 8, 17, 15)
	FUN_F(Y2, Y3, Y0)
	STEP(Y1, Y2, 96, 12, 22, 10)
	FUN_F(Y1, Y2, Y3)
	STEP(Y0, Y1, 128, 16, 7, 25)
	FUN_F(Y0, Y1, Y2)
	STEP(Y3, Y0, 160, 20, 12, 20)
	FUN_F(Y3, Y0, Y1)
	STEP(Y2, Y3, 192, 24, 17, 15)
	FUN_F(Y2, Y3, Y0)
	STEP(Y1, Y2, 224, 28, 22, 10)
	FUN_F(Y1, Y2, Y3)
	STEP(Y0, Y1, 256, 32, 7, 25)
	FUN_F(Y0, Y1, Y2)
	STEP(Y3, Y0, 288, 36, 12, 20)
	FUN_F(Y3, Y0, Y1)
	STEP(Y2, Y3, 320, 40, 17, 15)
	FUN_F(Y2, Y3, Y0)
	STEP(Y1, Y2, 352, 44, 22, 10)
	FUN_F(Y1, Y2, Y3)
	STEP(Y0, Y1, 384, 48, 7, 25)
	FUN_F(Y0, Y1, Y2)
	STEP(Y3, Y0, 416, 52, 12, 20)
	FUN_F(Y3, Y0, Y1)
	STEP(Y2, Y3, 448, 56, 17, 15)
	FUN_F(Y2, Y3, Y0)
	STEP(Y1, Y2, 480, 60, 22, 10)
	FUN_G(Y1, Y2, Y3)
	STEP(Y0, Y1, 32, 64, 5, 27)
	FUN_G(Y0, Y1, Y2)
	STEP(Y3, Y0, 192, 68, 9, 23)
	FUN_G(Y3, Y0, Y1)
	STEP(Y2, Y3, 352, 72, 14, 18)
	FUN_G(Y2, Y3, Y0)
	STEP(Y1, Y2, 0, 76, 20, 12)
	FUN_G(Y1, Y2, Y3)
	STEP(Y0, Y1, 160, 80, 5, 27)
	FUN_G(Y0, Y1, Y2)
	STEP(Y3, Y0, 320, 84, 9, 23)
	FUN_G(Y3, Y0, Y1)
	STEP(Y2, Y3, 480, 88, 14, 18)
	FUN_G(Y2, Y3, Y0)
	STEP(Y1, Y2, 128, 92, 20, 12)
	FUN_G(Y1, Y2, Y3)
	STEP(Y0, Y1, 288, 96, 5, 27)
	FUN_G(Y0, Y1, Y2)
	STEP(Y3, Y0, 448, 100, 9, 23)
	FUN_G(Y3, Y0, Y1)
	STEP(Y2, Y3, 96, 104, 14, 18)
	FUN_G(Y2, Y3, Y0)
	STEP(Y1, Y2, 256, 108, 20, 12)
	FUN_G(Y1, Y2, Y3)
	STEP(Y0, Y1, 416, 112, 5, 27)
	FUN_G(Y0, Y1, Y2)
	STEP(Y3, Y0, 64, 116, 9, 23)
	FUN_G(Y3, Y0, Y1)
	STEP(Y2, Y3, 224, 120, 14, 18)
	FUN_G(Y2, Y3, Y0)
	STEP(Y1, Y2, 384, 124, 20, 12)
	FUN_H(Y1, Y2, Y3)
	STEP(Y0, Y1, 160, 128, 4, 28)
	FUN_H(Y0, Y1, Y2)
	STEP(Y3, Y0, 256, 132, 11, 21)
	FUN_H(Y3, Y0, Y1)
	STEP(Y2, Y3, 352, 136, 16, 16)
	FUN_H(Y2, Y3, Y0)
	STEP(Y1, Y2, 448, 140, 23, 9)
	FUN_H(Y1, Y2, Y3)
	STEP(Y0, Y1, 32, 144, 4, 28)
	FUN_H(Y0, Y1, Y2)
	STEP(Y3, Y0, 128, 148, 11, 21)
	FUN_H(Y3, Y0, Y1)
	STEP(Y2, Y3, 224, 152, 16, 16)
	FUN_H(Y2, Y3, Y0)
	STEP(Y1, Y2, 320, 156, 23, 9)
	FUN_H(Y1, Y2, Y3)
	STEP(Y0, Y1, 416, 160, 4, 28)
	FUN_H(Y0, Y1, Y2)
	STEP(Y3, Y0, 0, 164, 11, 21)
	FUN_H(Y3, Y0, Y1)
	STEP(Y2, Y3, 96, 168, 16, 16)
	FUN_H(Y2, Y3, Y0)
	STEP(Y1, Y2, 192, 172, 23, 9)
	FUN_H(Y1, Y2, Y3)
	STEP(Y0, Y1, 288, 176, 4, 28)
	FUN_H(Y0, Y1, Y2)
	STEP(Y3, Y0, 384, 180, 11, 21)
	FUN_H(Y3, Y0, Y1)
	STEP(Y2, Y3, 480, 184, 16, 16)
	FUN_H(Y2, Y3, Y0)
	STEP(Y1, Y2, 64, 188, 23, 9)
	FUN_I(Y1, Y2, Y3)
	STEP(Y0, Y1, 0, 192, 6, 26)
	FUN_I(Y0, Y1, Y2)
	STEP(Y3, Y0, 224, 196, 10, 22)
	FUN_I(Y3, Y0, Y1)
	STEP(Y2, Y3, 448, 200, 15, 17)
	FUN_I(Y2, Y3, Y0)
	STEP(Y1, Y2, 160, 204, 21, 11)
	FUN_I(Y1, Y2, Y3)
	STEP(Y0, Y1, 384, 208, 6, 26)
	FUN_I(Y0, Y1, Y2)
	STEP(Y3, Y0, 96, 212, 10, 22)
	FUN_I(Y3, Y0, Y1)
	STEP(Y2, Y3, 320, 216, 15, 17)
	FUN_I(Y2, Y3, Y0)
	STEP(Y1, Y2, 32, 220, 21, 11)
	FUN_I(Y1, Y2, Y3)
	STEP(Y0, Y1, 256, 224, 6, 26)
	FUN_I(Y0, Y1, Y2)
	STEP(Y3, Y0, 480, 228, 10, 22)
	FUN_I(Y3, Y0, Y1)
	STEP(Y2, Y3, 192, 232, 15, 17)
	FUN_I(Y2, Y3, Y0)
	STEP(Y1, Y2, 416, 236, 21, 11)
	FUN_I(Y1, Y2, Y3)
	STEP(Y0, Y1, 128, 240, 6, 26)
	FUN_I(Y0, Y1, Y2)
	STEP(Y3, Y0, 352, 244, 10, 22)
	FUN_I(Y3, Y0, Y1)
	STEP(Y2, Y3, 64, 248, 15, 17)
	FUN_I(Y2, Y3, Y0)
	STEP(Y1, Y2, 288, 252, 21, 11)
	VPAND  Y10, Y0, Y0
	VPAND  Y10, Y1, Y1
	VPAND  Y10, Y2, Y2
	VPAND  Y10, Y3, Y3
	VPADDD Y0, Y4, Y4
	VPADDD Y1, Y5, Y5
	VPADDD Y2, Y6, Y6
	VPADDD Y3, Y7, Y7
	ADDQ   $64, DX
	DECQ   CX
	JNZ    block

	VMOVDQU Y4, 0(DI)
	VMOVDQU Y5, 64(DI)
	VMOVDQU Y6, 128(DI)
	VMOVDQU Y7, 192(DI)
	VZEROUPPER

done:
	RET
