package lanehash

import (
	"runtime"

	"github.com/klauspost/cpuid/v2"
)

// hasAVX512 reports whether the 16-lane kernels can run: AVX-512 F, BW and
// VL on amd64 with the OS saving the ZMM and opmask state (cpuid checks
// XCR0 before it reports any AVX-512 feature).
var hasAVX512 = runtime.GOARCH == "amd64" &&
	cpuid.CPU.Supports(cpuid.AVX512F, cpuid.AVX512BW, cpuid.AVX512VL)

// hasAVX2 reports whether the 8-lane MD5 kernel can run (AVX2 on amd64, with
// the OS saving the YMM state).
var hasAVX2 = runtime.GOARCH == "amd64" && cpuid.CPU.Supports(cpuid.AVX2)
