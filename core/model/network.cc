#include "core/model/network.h"

#include "core/model/gpt.h"
#include "core/model/llama.h"

namespace stronghold::core::net {

torch::Tensor Embed(const torch::Tensor& embedding, const BufferLayout& layout,
                    const torch::Tensor& tokens, const ModelConfig& model) {
  return model.llama() ? llama::Embed(embedding, layout, tokens)
                       : gpt::Embed(embedding, layout, tokens);
}

torch::Tensor Block(const torch::Tensor& block, const BufferLayout& layout,
                    const torch::Tensor& x, const ModelConfig& model) {
  return model.llama() ? llama::Block(block, layout, x, model)
                       : gpt::Block(block, layout, x, model.heads);
}

torch::Tensor HeadLoss(const torch::Tensor& final_norm,
                       const BufferLayout& final_layout,
                       const torch::Tensor& embedding,
                       const BufferLayout& embedding_layout,
                       const torch::Tensor& x, const torch::Tensor& targets,
                       const ModelConfig& model) {
  if (model.llama()) {
    return llama::HeadLoss(final_norm, final_layout, embedding,
                           embedding_layout, x, targets, model);
  }
  return gpt::HeadLoss(final_norm, final_layout, embedding, embedding_layout, x,
                       targets);
}

}  // namespace stronghold::core::net
