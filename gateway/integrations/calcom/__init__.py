"""Cal.com: the API client, the bot's calendar and catalogue over it, whose bookings are whose."""
