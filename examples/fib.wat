;; A small module for trying weft: a memory with a greeting in it, and two
;; exported functions.
;;
;;   cargo run --release -p weft-cli -- run --invoke fib examples/fib.wat 20
;;   cargo run -p weft-cli -- validate examples/fib.wat
(module $hello
  (memory (export "memory") 1 2)
  (data (i32.const 16) "Hello, weft!\n")

  ;; Where the greeting starts and how long it is.
  (global (export "greeting_ptr") i32 (i32.const 16))
  (global (export "greeting_len") i32 (i32.const 13))

  (func $add (export "add") (param $a i32) (param $b i32) (result i32)
    local.get $a
    local.get $b
    i32.add)

  ;; The n-th Fibonacci number (fib 0 = 0, fib 1 = 1), computed iteratively.
  (func $fib (export "fib") (param $n i32) (result i64)
    (local $a i64) (local $b i64) (local $t i64)
    (local.set $b (i64.const 1))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $t (i64.add (local.get $a) (local.get $b)))
        (local.set $a (local.get $b))
        (local.set $b (local.get $t))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $a)))
