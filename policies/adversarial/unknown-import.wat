;; Attacks the contract: a component that imports a function the host does not offer
;; (`evil:net/socket`). The engine must refuse it at load and name the import.
(component
  (import "evil:net/socket@1.0.0" (instance $socket
    (export "connect" (func (param "host" string) (result u32)))
  ))
)
