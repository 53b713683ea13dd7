"""Messages in the customer's language and register: locales, rendering, names, catalogs, SMS encoding."""
