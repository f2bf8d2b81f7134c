list(APPEND CULORA_SOURCES host/train/schedule.c)
