"""The help desk's Dashboard App: a page staff open beside a Chatwoot conversation to see the
client's visits and free times, and to propose times to the client (README, "Booking from
Chatwoot")."""
