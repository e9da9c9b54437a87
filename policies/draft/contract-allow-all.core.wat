;; The floor of contract 0.2 with one core instance: a core module that the build embeds
;; with the contract's WIT (`sdk/wit`) and wraps into a component. It imports nothing, so
;; `wit-component` adds no shim or fixup, and it reads nothing of the lent request:
;; `evaluate` answers `ok(verdict)` with the decision `allow` and nothing else (a zeroed
;; result), `describe` an empty description. It drops the borrowed request handle before
;; it returns, as the canonical ABI requires (`canon resource.drop` needs no memory). The
;; floor without the Rust runtime: `allow-all` is one core instance too, with a Rust
;; module's stack and data.
(module
  (import "portcullis:policy/types@0.2.1" "[resource-drop]request" (func $drop (param i32)))
  (memory (export "memory") 1)
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    unreachable)
  (func (export "evaluate") (param $request i32) (result i32)
    (call $drop (local.get $request))
    (i32.const 0))
  (func (export "describe") (result i32)
    (i32.const 0))
)
