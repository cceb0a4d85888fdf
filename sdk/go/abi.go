package vecron

// The guest ABI of docs/abi.md: the alloc export, packed results, the host imports.

import "unsafe"

// Buffers handed to the host stay reachable here so the GC never frees them while the host reads
// or writes them (every run gets a fresh instance, so nothing needs releasing).
var pinned [][]byte

func keep(b []byte) int32 {
	if len(b) == 0 {
		b = make([]byte, 1)
	}
	pinned = append(pinned, b)
	return int32(uintptr(unsafe.Pointer(&b[0])))
}

// The host writes the input and every host answer through this.
//
//go:wasmexport alloc
func alloc(size int32) int32 {
	if size < 1 {
		size = 1
	}
	return keep(make([]byte, size))
}

func pack(b []byte) int64 {
	p := keep(b)
	return int64(uint32(p))<<32 | int64(uint32(len(b)))
}

// unpacked copies what a packed (ptr << 32 | len) answer points to.
func unpacked(r int64) []byte {
	ptr := uintptr(uint32(uint64(r) >> 32))
	n := int(uint32(r))
	if n == 0 {
		return nil
	}
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(ptr)), n)...)
}

func ptrOf(b []byte) int32 {
	if len(b) == 0 {
		return 0
	}
	return int32(uintptr(unsafe.Pointer(&b[0])))
}

//go:wasmimport vecron log
func hostLog(level, ptr, length int32)

//go:wasmimport vecron get_context
func hostGetContext(keyPtr, keyLen int32) int64

//go:wasmimport vecron set_context
func hostSetContext(keyPtr, keyLen, valPtr, valLen int32) int32

//go:wasmimport vecron http_request
func hostHTTPRequest(ptr, length int32) int64

//go:wasmimport vecron db_query
func hostDBQuery(ptr, length int32) int64

//go:wasmimport vecron file_read
func hostFileRead(ptr, length int32) int64

//go:wasmimport vecron file_write
func hostFileWrite(ptr, length int32) int64

//go:wasmimport vecron file_list
func hostFileList(ptr, length int32) int64

//go:wasmimport vecron crypto
func hostCrypto(ptr, length int32) int64

//go:wasmimport vecron time
func hostTime(ptr, length int32) int64
