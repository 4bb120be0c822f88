/* chat: built-in ChatML/Qwen3 chat template, for display and tests only.
 * The prompt a model really sees in `qeval run` is rendered by the server;
 * this shows what that looks like for Qwen3-style templates:
 *   <|im_start|>ROLE\nCONTENT<|im_end|>\n ... <|im_start|>assistant\n
 * plus "<think>\n\n</think>\n\n" when thinking is switched off. */
#ifndef QE_CHAT_H
#define QE_CHAT_H

#include <jansson.h>

#include "buf.h"
#include "err.h"

enum qe_chat_think { QE_THINK_DEFAULT = 0, QE_THINK_ON, QE_THINK_OFF };

/* Appends the rendering of messages (array of {"role","content"}, both
 * strings) to out, with the generation prompt. Returns 0 or QE_EINVAL for a
 * malformed message (named by index). */
int qe_chat_render(const json_t *messages, enum qe_chat_think think, qe_buf *out, qe_err *e);

#endif
