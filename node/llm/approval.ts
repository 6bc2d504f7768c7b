/** The signal a tool call waits on: `approve:<the model's call id>` (step-qualified if the id repeats). */
export const APPROVAL_PREFIX = 'approve:'
