-- A move gives the booking a new uid: the one it replaces, so that a visit counts once.
ALTER TABLE events ADD COLUMN previous_booking text;
