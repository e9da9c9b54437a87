;; Attacks loading: a core WebAssembly module, not a component. The engine must refuse it
;; with a clear error instead of trying to run it.
(module
  (func (export "evaluate") (result i32) i32.const 0)
)
