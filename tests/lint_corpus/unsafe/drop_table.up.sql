-- expect: ban-drop-table
DROP TABLE bookings;
