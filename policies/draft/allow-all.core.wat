;; The floor of the draft one-core-instance world (`wit/draft.wit`): a core module that the
;; build embeds with that world and wraps into a component. `evaluate` takes the lowered
;; sign-in, configuration and data (more than 16 flat values, so the host writes them into
;; memory through `cabi_realloc` and passes one pointer), reads none of it, and answers
;; `ok(verdict)` with the decision `allow` and nothing else: a zeroed result.
(module
  (memory (export "memory") 1)
  ;; Bytes 0..1024 stay zero: the answer. Allocations start above it.
  (global $next (mut i32) (i32.const 1024))
  (func (export "cabi_realloc") (param i32 i32) (param $align i32) (param $size i32)
    (result i32)
    (local $start i32)
    (local $end i32)
    (local.set $start
      (i32.and
        (i32.add (global.get $next) (i32.sub (local.get $align) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get $align))))
    (local.set $end (i32.add (local.get $start) (local.get $size)))
    (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (if (i32.eq
              (memory.grow
                (i32.add
                  (i32.div_u
                    (i32.sub (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
                    (i32.const 65536))
                  (i32.const 1)))
              (i32.const -1))
          (then unreachable))))
    (global.set $next (local.get $end))
    (local.get $start))
  (func (export "evaluate") (param i32) (result i32)
    (i32.const 0))
)
