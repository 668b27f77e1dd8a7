-- The owner's weekly reports sent: one row per salon and ISO week, so that a report is never
-- sent twice for one week (by a second replica, a restart or a repeated command).
CREATE TABLE owner_reports (
    salon text NOT NULL,
    week text NOT NULL,
    sent_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (salon, week)
);
