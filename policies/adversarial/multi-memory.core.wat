;; Attacks the memory budget with several linear memories: four memories, each grown to
;; 25 MiB, 100 MiB together. Each stays under the default 64 MiB rule budget on its own.
;; A core module that the build embeds with the policy contract's WIT and wraps into a
;; component like a compiled policy. The engine's pool gives a core module one memory, so
;; it is refused at load; memories spread over several core instances are held to the
;; rule's limit together (the limiter sums them).
(module
  (memory (export "memory") 1)
  (memory $second 1)
  (memory $third 1)
  (memory $fourth 1)
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    unreachable)
  (func (export "evaluate") (param i32) (result i32)
    (drop (memory.grow 0 (i32.const 400)))
    (drop (memory.grow $second (i32.const 400)))
    (drop (memory.grow $third (i32.const 400)))
    (drop (memory.grow $fourth (i32.const 400)))
    unreachable)
  (func (export "describe") (result i32)
    unreachable)
)
