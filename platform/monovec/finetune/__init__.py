"""Fine-tuning the shared text encoder (USE-m3) on Ray Train, multi-task; see `monovec.finetune.train`."""
