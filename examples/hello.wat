;; A WASI "hello world" in WebAssembly text: needs no compiler.
;;
;;   cargo run --release -p weft-cli -- run examples/hello.wat
;;
;; `_start` writes "Hello, world!\n" to stdout with fd_write and returns
;; (exit status 0).
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param $fd i32) (param $iovs i32) (param $iovs_len i32)
                    (param $nwritten i32) (result i32)))

  (memory (export "memory") 1)

  ;; The text, at offset 16.
  (data (i32.const 16) "Hello, world!\n")

  (func (export "_start")
    ;; One ciovec at offset 0: { buf = 16, buf_len = 14 }.
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 14))
    ;; fd_write(stdout, iovs = 0, iovs_len = 1, nwritten = 32)
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 32)))))
