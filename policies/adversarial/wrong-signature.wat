;; Attacks the contract: a component with exports named `evaluate` and `describe`, but of
;; the wrong types (no request in, a number out). The engine must refuse it at load, when
;; it checks the export types once, instead of misreading its memory at every evaluation.
(component
  (core module $m
    (func (export "evaluate") (result i32) i32.const 0)
    (func (export "describe") (result i32) i32.const 0))
  (core instance $i (instantiate $m))
  (func (export "evaluate") (result u32) (canon lift (core func $i "evaluate")))
  (func (export "describe") (result u32) (canon lift (core func $i "describe")))
)
