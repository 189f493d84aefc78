"""One date and number format for every page, e-mail and admin screen (decision 061).

Django reads these instead of its English defaults (FORMAT_MODULE_PATH), so the admin's
dates look like the pages' ones: day, month, year, 24-hour time and the time zone.
"""

DATETIME_FORMAT = "j M Y, H:i T"
SHORT_DATETIME_FORMAT = "j M Y, H:i T"
DATE_FORMAT = "j M Y"
SHORT_DATE_FORMAT = "j M Y"
TIME_FORMAT = "H:i T"
THOUSAND_SEPARATOR = ","
DECIMAL_SEPARATOR = "."
NUMBER_GROUPING = 3
