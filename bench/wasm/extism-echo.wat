;; extism-echo: the Extism counterpart of fixtures/wasm/echo for bench/wasm.ts (the overhead of one
;; run with 1 KB of JSON in and out). Hand-written WAT against the Extism kernel imports of
;; `extism:host/env`, the way the Extism PDKs do it: read the input 8 bytes at a time with
;; input_load_u64 (the tail with input_load_u8), store it into a block from the kernel's alloc with
;; store_u64 / store_u8, and make that block the output with output_set.
;;
;; Export: echo() -> i32 (0 = success), the Extism plugin function form.
;; Build:  wat2wasm bench/wasm/extism-echo.wat -o bench/wasm/extism-echo.wasm
(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)

  (func (export "echo") (result i32)
    (local $len i64) (local $out i64) (local $i i64)
    (local.set $len (call $input_length))
    (local.set $out (call $alloc (local.get $len)))
    ;; whole 8-byte words
    (block $done8
      (loop $words
        (br_if $done8 (i64.gt_u (i64.add (local.get $i) (i64.const 8)) (local.get $len)))
        (call $store_u64 (i64.add (local.get $out) (local.get $i)) (call $input_load_u64 (local.get $i)))
        (local.set $i (i64.add (local.get $i) (i64.const 8)))
        (br $words)))
    ;; the tail, byte by byte
    (block $done1
      (loop $bytes
        (br_if $done1 (i64.ge_u (local.get $i) (local.get $len)))
        (call $store_u8 (i64.add (local.get $out) (local.get $i)) (call $input_load_u8 (local.get $i)))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $bytes)))
    (call $output_set (local.get $out) (local.get $len))
    (i32.const 0))
)
