-- quiet: ban-truncate-cascade
TRUNCATE bookings;
