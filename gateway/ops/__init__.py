"""Operations: `frontdesk check`, `frontdesk demo`, `frontdesk metabase sync` and the analytics
report page."""
