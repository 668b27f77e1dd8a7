"""Operations: `frontdesk check`, `frontdesk demo` and the analytics report page."""
