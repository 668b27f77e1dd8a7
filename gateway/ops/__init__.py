"""Operations: the operator's commands (`frontdesk check`, `demo`, `metabase sync`, `salons`)
and the analytics report page."""
